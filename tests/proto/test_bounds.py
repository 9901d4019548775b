"""Bounded inputs: what a caller may send, and hostile values refused quickly as InvalidValue."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Context, Decimal, localcontext
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import bounds, jsoncodec
from tradeforge_proto.core.bounds import InvalidValue
from tradeforge_proto.core.errors import LocalProtocolError

HUGE_INT = 10**5000
"""More digits than Python will turn into text by default."""
LONG_DIGITS = "9" * 10_000
MEGABYTE = "A" * 1_000_000

Check = Callable[[object, str], object]
R = TypeVar("R")


def refusal(check: Check, value: object, name: str) -> InvalidValue:
    """The InvalidValue ``check`` raises for ``value``, after checking that it names ``name``."""
    with pytest.raises(InvalidValue) as caught:
        check(value, name)
    error = caught.value
    assert isinstance(error, LocalProtocolError)
    assert isinstance(error, ValueError)
    assert error.name == name
    assert str(error).startswith(f"{name} ")
    assert len(str(error)) < 200
    return error


def attempt(check: Callable[[object, str], R], value: object, name: str) -> R | InvalidValue:
    """What ``check`` gives for ``value``, or the InvalidValue (naming ``name``) it raises."""
    try:
        return check(value, name)
    except InvalidValue as error:
        refused = error
    assert refused.name == name
    return refused


def same_decimal(a: Decimal, b: Decimal) -> bool:
    """Equal value and the same digits and exponent (nothing rounded or normalised away)."""
    return a == b and a.as_tuple() == b.as_tuple()


def sent(value: Decimal) -> Decimal:
    """What the gateway reads back when ``value`` is written by the project's JSON codec."""
    return jsoncodec.to_decimal(jsoncodec.loads(jsoncodec.dumps({"price": value}))["price"])


# --- prices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        ("6150.25", Decimal("6150.25")),
        ("6150.250", Decimal("6150.250")),
        (".5", Decimal("0.5")),
        ("0.0000000001", Decimal("1E-10")),
        ("1e3", Decimal("1E+3")),
        ("25E-1", Decimal("2.5")),
        ("99999.9999999999", Decimal("99999.9999999999")),
        ("999999999.999999", Decimal("999999999.999999")),
        (6150, Decimal(6150)),
        (999_999_999, Decimal(999_999_999)),
        (0.1, Decimal("0.1")),
        (6150.25, Decimal("6150.25")),
        (Decimal("6150.2500"), Decimal("6150.2500")),
        (Decimal("1.00000000000000000000000"), Decimal("1.00000000000000000000000")),
        (Decimal("1E+8"), Decimal("1E+8")),
    ],
)
def test_prices_are_accepted_exactly_as_given(given_value: object, expected: Decimal) -> None:
    assert same_decimal(bounds.price(given_value), expected)


def test_a_float_price_goes_through_its_shortest_form_never_its_binary_value() -> None:
    assert bounds.price(0.1) != Decimal.from_float(0.1)
    assert bounds.price(2.675) == Decimal("2.675")


def test_a_decimal_price_comes_back_as_the_same_value() -> None:
    value = Decimal("6150.25")
    assert bounds.price(value) is value


@pytest.mark.parametrize(
    "value",
    [
        "1E+300000",
        "1E+1000000000",
        "1e5000",
        Decimal("1E+1000000000"),
        Decimal("1E-1000000000"),
        Decimal("1E+300000"),
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        float("nan"),
        float("inf"),
        float("-inf"),
        1e308,
        5e-324,
        "1_000",
        " 1.00 ",
        "1.00 ",
        " 1.00",
        "+1",
        "-1",
        "0",
        "0.0",
        "000",
        Decimal(0),
        Decimal("-0"),
        Decimal("-6150.25"),
        0,
        -1,
        0.0,
        -0.5,
        True,
        False,
        10**400,
        2**64,
        10**9,
        "1000000000",
        Decimal("1E+9"),
        Decimal("999999999.99999999999"),
        "0.00000000001",
        Decimal("1E-11"),
        "1E-999",
        "1E+999",
        LONG_DIGITS,
        "0." + LONG_DIGITS,
        Decimal(LONG_DIGITS),
        Decimal("0." + LONG_DIGITS),
        Decimal("1." + "0" * 24),
        "1" * 41,
        "1\x00",
        "\x001",
        "1\n",
        "\r1",
        "1\t",
        "1\u200b",
        "\u0661",
        "",
        ".",
        "1.",
        "1e",
        "0x10",
        "1,5",
        "6150.25.5",
        b"6150.25",
        None,
        [6150],
        {"price": 6150},
        object(),
        1 + 2j,
    ],
)
def test_hostile_prices_are_refused_naming_the_field(value: object) -> None:
    refusal(bounds.price, value, "limit_price")


def test_the_reason_of_a_price_refusal_is_told() -> None:
    assert "finite" in str(refusal(bounds.price, float("nan"), "stop_price"))
    assert "bool" in str(refusal(bounds.price, True, "stop_price"))
    assert "below 1000000000" in str(refusal(bounds.price, 10**9, "stop_price"))
    assert "decimal text" in str(refusal(bounds.price, "+1", "stop_price"))
    assert "24 digits" in str(refusal(bounds.price, Decimal(LONG_DIGITS), "stop_price"))
    assert "10 decimal places" in str(refusal(bounds.price, "1.00000000001", "stop_price"))
    assert "a number" in str(refusal(bounds.price, None, "stop_price"))


def test_a_long_value_is_shortened_in_the_message() -> None:
    error = refusal(bounds.price, LONG_DIGITS, "limit_price")
    assert str(error).endswith(f"... ({len(LONG_DIGITS)} characters)")
    assert len(str(error)) < 200
    huge = refusal(bounds.size, 10**5000, "size")
    assert "an integer of" in str(huge)
    short = refusal(bounds.price, "-1", "limit_price")
    assert str(short).endswith("got '-1'")


def test_the_default_field_name_is_price() -> None:
    with pytest.raises(InvalidValue, match=r"^price "):
        bounds.price("0")


def test_a_price_check_does_not_depend_on_the_callers_decimal_precision() -> None:
    with localcontext(prec=6):
        with pytest.raises(InvalidValue, match="decimal places"):
            bounds.price("1.00000000001", "limit_price")
        assert same_decimal(bounds.price("6150.25"), Decimal("6150.25"))


def test_optional_price_lets_an_unset_field_through() -> None:
    assert bounds.optional_price(None) is None
    assert bounds.optional_price("6150.25", "limit_price") == Decimal("6150.25")
    refusal(bounds.optional_price, "NaN", "trail_price")


@st.composite
def accepted_prices(draw: st.DrawFn) -> Decimal:
    """Any price the rules allow: up to 10 places, below a billion, trailing zeros kept."""
    places = draw(st.integers(0, bounds.MAX_PRICE_PLACES))
    top = min(bounds.MAX_PRICE * 10**places - 1, 10**bounds.MAX_SIGNIFICANT - 1)
    coefficient = draw(st.integers(1, int(top)))
    digits = tuple(int(c) for c in str(coefficient))
    zeros = draw(st.integers(0, bounds.MAX_PRICE_DIGITS - len(digits)))
    return Decimal((0, digits + (0,) * zeros, -places - zeros))


@settings(max_examples=300, deadline=None)
@given(accepted_prices())
def test_every_accepted_price_comes_back_unchanged_as_decimal_or_text(value: Decimal) -> None:
    assert same_decimal(bounds.price(value), value)
    assert same_decimal(bounds.price(format(value, "f")), value)
    assert same_decimal(bounds.price(str(value)), value)


@settings(max_examples=300, deadline=None)
@given(accepted_prices())
@example(Decimal("6150.25"))
@example(Decimal("123456789.012345"))
def test_every_accepted_price_is_sent_exactly(value: Decimal) -> None:
    assert sent(bounds.price(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_price_is_its_shortest_form_or_refused(value: float) -> None:
    accepted = attempt(bounds.price, value, "price")
    if isinstance(accepted, InvalidValue):
        return
    assert accepted == Decimal(repr(value))
    assert 0 < accepted < bounds.MAX_PRICE
    assert sent(accepted) == accepted


def _within_price_rules(value: Decimal) -> bool:
    return (
        value.is_finite()
        and len(value.as_tuple().digits) <= bounds.MAX_PRICE_DIGITS
        and 0 < value < bounds.MAX_PRICE
        and value == value.quantize(Decimal("1E-10"))
        and len(value.normalize(Context(prec=40)).as_tuple().digits) <= bounds.MAX_SIGNIFICANT
    )


hostile_decimals = st.builds(
    lambda sign, digits, exponent: Decimal((sign, tuple(digits), exponent)),
    st.integers(0, 1),
    st.lists(st.integers(0, 9), min_size=1, max_size=40),
    st.one_of(
        st.integers(-40, 20),
        st.integers(-(10**9), 10**9),
        st.sampled_from([-(10**9), 10**9, -999_999, 999_999]),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.decimals(allow_nan=True, allow_infinity=True), hostile_decimals))
@example(Decimal("1E+1000000000"))
@example(Decimal("1E-1000000000"))
@example(Decimal("-0E-1000000000"))
def test_any_decimal_is_accepted_exactly_when_it_meets_the_rules(value: Decimal) -> None:
    accepted = attempt(bounds.price, value, "price")
    if isinstance(accepted, InvalidValue):
        assert not _within_price_rules(value)
        return
    assert _within_price_rules(value)
    assert same_decimal(accepted, value)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(r"[ +\-]?[0-9_]{0,12}(\.[0-9]{0,14})?([eE][+\-]?[0-9]{1,7})?\s?"),
    )
)
def test_any_text_is_a_bounded_price_or_refused(value: str) -> None:
    accepted = attempt(bounds.price, value, "price")
    if isinstance(accepted, InvalidValue):
        return
    assert len(value) <= bounds.MAX_NUMBER_TEXT
    assert re.fullmatch(r"[0-9.eE+\-]+", value)
    assert same_decimal(accepted, Decimal(value))
    assert _within_price_rules(accepted)


# --- sizes, ids and ticks -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["1", 1.0, True, False, 0, -1, bounds.MAX_SIZE + 1, 10**400, 2**64, None, Decimal(1), [1]],
)
def test_sizes_outside_the_rules_are_refused(value: object) -> None:
    refusal(bounds.size, value, "size")


def test_sizes_from_one_to_the_maximum_are_accepted() -> None:
    assert bounds.size(1) == 1
    assert bounds.size(bounds.MAX_SIZE) == bounds.MAX_SIZE
    assert bounds.size(4, "size", maximum=4) == 4
    with pytest.raises(InvalidValue, match="from 1 to 4"):
        bounds.size(5, "size", maximum=4)


@pytest.mark.parametrize(
    "value",
    [True, False, 1.0, 7.5, "7", 0, -7, bounds.MAX_ID + 1, 2**64, 10**400, None, Decimal(7)],
)
def test_identifiers_outside_the_rules_are_refused(value: object) -> None:
    refusal(bounds.identifier, value, "order_id")


def test_identifiers_a_json_number_carries_exactly_are_accepted() -> None:
    assert bounds.identifier(1) == 1
    assert bounds.identifier(bounds.MAX_ID) == bounds.MAX_ID
    assert bounds.MAX_ID == 2**53 - 1
    assert jsoncodec.loads(jsoncodec.dumps(bounds.MAX_ID)) == bounds.MAX_ID


@pytest.mark.parametrize(
    "value",
    [0, bounds.MAX_TICKS + 1, -bounds.MAX_TICKS - 1, True, 1.5, "3", None, 10**400],
)
def test_bracket_ticks_outside_the_rules_are_refused(value: object) -> None:
    refusal(bounds.ticks, value, "stop_loss ticks")


def test_bracket_ticks_of_either_sign_are_accepted() -> None:
    for value in (1, -1, bounds.MAX_TICKS, -bounds.MAX_TICKS):
        assert bounds.ticks(value) == value


@pytest.mark.parametrize(
    ("check", "name"),
    [
        (bounds.price, "limit_price"),
        (bounds.size, "size"),
        (bounds.identifier, "account_id"),
        (bounds.ticks, "take_profit ticks"),
        (bounds.text, "search_text"),
        (bounds.contract_id, "contract_id"),
        (bounds.custom_tag, "custom_tag"),
    ],
)
def test_an_int_too_long_to_print_is_still_refused_as_invalid(check: Check, name: str) -> None:
    refusal(check, HUGE_INT, name)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.booleans(), st.floats(), st.text(max_size=5), st.none()))
def test_whole_numbers_are_refused_unless_in_range(value: object) -> None:
    whole = value if isinstance(value, int) and not isinstance(value, bool) else None
    checks: list[tuple[Check, int, int]] = [
        (bounds.size, 1, bounds.MAX_SIZE),
        (bounds.identifier, 1, bounds.MAX_ID),
    ]
    for check, low, high in checks:
        accepted = attempt(check, value, "n")
        if isinstance(accepted, InvalidValue):
            assert whole is None or not low <= whole <= high
        else:
            assert whole is not None
            assert accepted == whole
            assert low <= whole <= high
    offset = attempt(bounds.ticks, value, "n")
    if isinstance(offset, InvalidValue):
        assert whole is None or not 0 < abs(whole) <= bounds.MAX_TICKS
    else:
        assert whole is not None
        assert offset == whole
        assert 0 < abs(whole) <= bounds.MAX_TICKS


# --- text, custom tags and contract ids -----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "a\x00b",
        "a\rb",
        "a\nb",
        "a\tb",
        "\tab",
        "ab\n",
        " ab",
        "ab ",
        " ",
        "a\x7fb",
        "a\u2028b",
        "\ud800",
        "x" * (bounds.MAX_TEXT + 1),
        MEGABYTE,
        5,
        None,
        b"MES",
        ["MES"],
    ],
)
def test_text_outside_the_rules_is_refused(value: object) -> None:
    refusal(bounds.text, value, "search_text")


def test_printable_text_is_accepted() -> None:
    for value in ("MES", "E-mini S&P 500", "Café ✓", "x" * bounds.MAX_TEXT, "a b"):
        assert bounds.text(value) == value
    assert bounds.text("abc", "symbol", maximum=3) == "abc"
    with pytest.raises(InvalidValue, match="1 to 3 characters"):
        bounds.text("abcd", "symbol", maximum=3)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "tag\x00",
        "tag\r",
        "tag\n",
        "t\tag",
        " tag",
        "tag ",
        "x" * (bounds.MAX_TAG + 1),
        MEGABYTE,
        7,
        True,
    ],
)
def test_custom_tags_outside_the_rules_are_refused(value: object) -> None:
    refusal(bounds.custom_tag, value, "custom_tag")


def test_custom_tags_up_to_the_maximum_are_accepted() -> None:
    assert bounds.custom_tag("tf-1752872400123-ab12") == "tf-1752872400123-ab12"
    assert bounds.custom_tag("x" * bounds.MAX_TAG) == "x" * bounds.MAX_TAG


@pytest.mark.parametrize(
    "value",
    [
        "",
        MEGABYTE,
        "x" * (bounds.MAX_CONTRACT_ID + 1),
        "CON.F.US.MES Z26",
        " CON.F.US.MES.Z26",
        "CON/F/US/MES/Z26",
        "CON.F.US.MES.Z26\\",
        "../etc/passwd",
        "CON.F.US.MES.Z26\n",
        "CON\x00",
        ".CON",
        "-CON",
        "CON?x=1",
        "CÖN",
        5,
        None,
        b"CON",
    ],
)
def test_contract_ids_outside_the_rules_are_refused(value: object) -> None:
    refusal(bounds.contract_id, value, "contract_id")


def test_contract_ids_of_the_gateway_are_accepted() -> None:
    for value in ("CON.F.US.MES.Z26", "CON.F.US.EP.U25", "a", "A1:b_2-c.3", "x" * 64):
        assert bounds.contract_id(value) == value


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_a_contract_id_exactly_when_it_uses_the_allowed_characters(
    value: str,
) -> None:
    allowed = bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}", value))
    accepted = attempt(bounds.contract_id, value, "contract_id")
    assert accepted == value if allowed else isinstance(accepted, InvalidValue)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_a_custom_tag_exactly_when_it_is_short_printable_and_trimmed(
    value: str,
) -> None:
    allowed = 1 <= len(value) <= bounds.MAX_TAG and value.isprintable() and value == value.strip()
    accepted = attempt(bounds.custom_tag, value, "custom_tag")
    if isinstance(accepted, InvalidValue):
        assert not allowed
    else:
        assert allowed
        assert accepted == value
        assert jsoncodec.loads(jsoncodec.dumps({"customTag": accepted})) == {"customTag": value}


# --- the JSON codec -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("6150.25"), b"6150.25"),
        (Decimal("6150.00"), b"6150"),
        (Decimal("0.1"), b"0.1"),
        (Decimal("1E+3"), b"1000"),
        (Decimal("-0.0"), b"0"),
        (Decimal("0E-1000000000"), b"0"),
        (Decimal("0E+1000000000"), b"0"),
        (Decimal("99999999999999999"), b"99999999999999999"),
        (Decimal("1E-30"), b"1e-30"),
    ],
)
def test_decimals_are_written_as_exact_json_numbers(value: Decimal, expected: bytes) -> None:
    assert jsoncodec.dumps(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1E+1000000000"),
        Decimal("-1E+1000000000"),
        Decimal("1E-1000000000"),
        Decimal("1E+300000"),
        Decimal("1E+18"),
        Decimal("1E-31"),
        Decimal(LONG_DIGITS),
        Decimal("0." + LONG_DIGITS),
        Decimal("1." + LONG_DIGITS),
        Decimal((0, (1,) * 10_000, -9_995)),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        Decimal("0.1000000000000000055511151231257827"),
        Decimal("99999999999999999.5"),
    ],
)
def test_decimals_a_json_number_cannot_carry_are_refused(value: Decimal) -> None:
    with pytest.raises(LocalProtocolError):
        jsoncodec.dumps(value)
    with pytest.raises(LocalProtocolError):
        jsoncodec.dumps({"order": {"limitPrice": value}})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.decimals(allow_nan=True, allow_infinity=True), hostile_decimals))
def test_a_decimal_is_written_exactly_or_refused(value: Decimal) -> None:
    try:
        data = jsoncodec.dumps([value])
    except LocalProtocolError:
        return
    assert jsoncodec.to_decimal(jsoncodec.loads(data)[0]) == value


def test_a_deeply_nested_value_is_described_briefly_not_recursed_into() -> None:
    nested: list[object] = []
    inner = nested
    for _ in range(100_000):
        deeper: list[object] = []
        inner.append(deeper)
        inner = deeper
    for check in (bounds.size, bounds.identifier, bounds.price, bounds.text):
        with pytest.raises(InvalidValue) as caught:
            check(nested, "field")
        assert len(str(caught.value)) < 120
