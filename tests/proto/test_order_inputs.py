"""Every order call, fed valid and extreme arguments: an exact request or a LocalProtocolError."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import bounds, jsoncodec
from tradeforge_proto.core.bounds import InvalidValue
from tradeforge_proto.core.enums import OrderSide, OrderType
from tradeforge_proto.core.errors import FeatureDisabled, LocalProtocolError
from tradeforge_proto.core.models import Bracket, OrderModification, OrderRequest
from tradeforge_proto.core.operations import Change, Operation, Safety
from tradeforge_proto.providers.topstepx import rest

HUGE_INT = 10**5000
CONTRACT = "CON.F.US.MES.Z26"
SETTINGS = settings(max_examples=100, deadline=None)

# --- what a caller might pass ---------------------------------------------------------------

EXTREME_CONSTANTS: tuple[object, ...] = (
    Decimal("1E+1000000000"),
    Decimal("-1E+1000000000"),
    Decimal("1E-1000000000"),
    Decimal("1E+300000"),
    Decimal("9" * 10_000),
    Decimal("0." + "1" * 10_000),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("123456789.0123456789"),
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    5e-324,
    -0.0,
    10**400,
    2**53,
    2**63,
    2**64,
    -1,
    0,
    True,
    False,
    "",
    " ",
    "\x00",
    "a\rb",
    "a\nb",
    "\t",
    "\u2028",
    "\ud800",
    " 1.00 ",
    "1_000",
    "+1",
    "-1",
    "NaN",
    "Infinity",
    "1E+300000",
    "1E+1000000000",
    "9" * 10_000,
    "x" * 100_000,
    b"1",
    bytearray(b"1"),
    [],
    [1],
    {},
    {"a": 1},
    (),
    object(),
    1 + 1j,
    OrderSide.BUY,
    OrderType.LIMIT,
    Bracket(5, OrderType.LIMIT),
)

extreme = st.one_of(
    st.sampled_from(EXTREME_CONSTANTS),
    st.integers(),
    st.floats(),
    st.decimals(),
    st.text(max_size=30),
    st.none(),
)


def now_and_then(
    rare: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """``usual`` seven draws in eight, ``rare`` the eighth."""
    return st.integers(0, 7).flatmap(lambda n: rare if n == 0 else usual)


def mixed(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values, sometimes an extreme one."""
    return now_and_then(extreme, valid)


valid_ids = st.one_of(st.integers(1, 10**6), st.sampled_from([1, bounds.MAX_ID]))
valid_contracts = st.one_of(
    st.sampled_from([CONTRACT, "CON.F.US.EP.U25", "x" * bounds.MAX_CONTRACT_ID]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,20}", fullmatch=True),
)
valid_sizes = st.integers(1, bounds.MAX_SIZE)
valid_prices = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(999_999_999), places=2),
    st.integers(1, 999_999_999),
    st.sampled_from(["6150.25", "6150", ".5", "1e3", "0.0000000001"]),
    st.sampled_from([6150.25, 0.1, 1e-10, 999_999_999.5]),
)
valid_tags = st.one_of(
    st.none(),
    st.sampled_from(["tf-1752872400123-ab12", "x" * bounds.MAX_TAG, "Café ✓"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20),
)
valid_sides = st.one_of(st.sampled_from(OrderSide), st.sampled_from([0, 1, "buy", "SELL"]))
valid_types = st.one_of(
    st.sampled_from(OrderType), st.sampled_from([1, 2, 3, 4, 5, "limit", "Market"])
)
valid_ticks = st.one_of(
    st.integers(-bounds.MAX_TICKS, -1),
    st.integers(1, bounds.MAX_TICKS),
)
brackets = now_and_then(
    st.builds(Bracket, mixed(valid_ticks), st.sampled_from(OrderType)), st.none()
)
PRICED = {
    OrderType.LIMIT: {"limit_price"},
    OrderType.STOP: {"stop_price"},
    OrderType.STOP_LIMIT: {"limit_price", "stop_price"},
    OrderType.TRAILING_STOP: {"trail_price"},
}


@st.composite
def order_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for an order, prices drawn to suit the order type most of the time."""
    kind = draw(mixed(valid_types))
    try:
        used = PRICED.get(OrderType.parse(kind), set())
    except ValueError:
        used = set()
    arguments: dict[str, Any] = {
        "account_id": draw(mixed(valid_ids)),
        "contract_id": draw(mixed(valid_contracts)),
        "side": draw(mixed(valid_sides)),
        "type": kind,
        "size": draw(mixed(valid_sizes)),
        "custom_tag": draw(mixed(valid_tags)),
        "stop_loss": draw(brackets),
        "take_profit": draw(brackets),
    }
    for name in ("limit_price", "stop_price", "trail_price"):
        wanted = mixed(valid_prices) if name in used else now_and_then(extreme, st.none())
        arguments[name] = draw(wanted)
    return arguments


# --- what the request must then say ---------------------------------------------------------


def as_decimal(value: object) -> Decimal:
    """The exact price a caller meant by ``value`` (a float by its shortest form)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    assert isinstance(value, Decimal | int | str)
    return Decimal(value)


def body_of(operation: Operation[Any]) -> dict[str, Any]:
    decoded = jsoncodec.loads(operation.request.body)
    assert isinstance(decoded, dict)
    return decoded


def assert_price(body: dict[str, Any], key: str, given_value: object) -> None:
    if given_value is None:
        assert key not in body
    else:
        assert jsoncodec.to_decimal(body[key]) == as_decimal(given_value)


def assert_bracket(body: dict[str, Any], key: str, leg: Bracket | None) -> None:
    if leg is None:
        assert key not in body
    else:
        assert body[key] == {"ticks": leg.ticks, "type": leg.type}


def assert_order_fields(order: OrderRequest, arguments: dict[str, Any]) -> None:
    assert order.account_id == arguments["account_id"]
    assert order.contract_id == arguments["contract_id"]
    assert order.side is OrderSide.parse(arguments["side"])
    assert order.type is OrderType.parse(arguments["type"])
    assert order.size == arguments["size"]
    assert order.custom_tag == arguments["custom_tag"]
    for name in ("limit_price", "stop_price", "trail_price"):
        given_value = arguments[name]
        kept = getattr(order, name)
        assert (kept is None) if given_value is None else (kept == as_decimal(given_value))


def assert_place_body(operation: Operation[Any], arguments: dict[str, Any]) -> None:
    body = body_of(operation)
    assert operation.name == "Order/place"
    assert operation.safety is Safety.WRITE
    assert body["accountId"] == arguments["account_id"]
    assert body["contractId"] == arguments["contract_id"]
    assert body["side"] == int(OrderSide.parse(arguments["side"]))
    assert body["type"] == int(OrderType.parse(arguments["type"]))
    assert body["size"] == arguments["size"]
    if arguments["custom_tag"] is None:
        assert "customTag" not in body
    else:
        assert body["customTag"] == arguments["custom_tag"]
    assert_price(body, "limitPrice", arguments["limit_price"])
    assert_price(body, "stopPrice", arguments["stop_price"])
    assert_price(body, "trailPrice", arguments["trail_price"])
    assert_bracket(body, "stopLossBracket", arguments["stop_loss"])
    assert_bracket(body, "takeProfitBracket", arguments["take_profit"])
    context = operation.context
    assert context["change"] is Change.PLACE
    assert context["account_id"] == arguments["account_id"]
    assert context["contract_id"] == arguments["contract_id"]
    assert context["custom_tag"] == arguments["custom_tag"]
    assert isinstance(context["request"], OrderRequest)


def held_back_by_a_feature_switch(
    arguments: dict[str, Any], allow_brackets: bool, allow_trailing_stop: bool
) -> bool:
    """True when a valid order uses brackets or a trailing stop without opting in."""
    order = OrderRequest(**arguments)
    return (order.has_brackets and not allow_brackets) or (
        order.type is OrderType.TRAILING_STOP and not allow_trailing_stop
    )


# --- OrderRequest and place_order -----------------------------------------------------------

PLACEABLE = [t for t in OrderType if t is not OrderType.UNKNOWN]
BRACKET_TYPES = [OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP]


@st.composite
def valid_order_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments of an order the gateway can take, brackets signed the right way."""
    kind = draw(st.sampled_from(PLACEABLE))
    side = draw(st.sampled_from(OrderSide))
    toward_profit = 1 if side is OrderSide.BUY else -1

    def leg(sign: int) -> st.SearchStrategy[Bracket | None]:
        offsets = st.integers(1, bounds.MAX_TICKS).map(lambda n: n * sign)
        return st.one_of(st.none(), st.builds(Bracket, offsets, st.sampled_from(BRACKET_TYPES)))

    used = PRICED.get(kind, set())
    arguments: dict[str, Any] = {
        "account_id": draw(valid_ids),
        "contract_id": draw(valid_contracts),
        "side": side,
        "type": kind,
        "size": draw(valid_sizes),
        "custom_tag": draw(valid_tags),
        "stop_loss": draw(leg(-toward_profit)),
        "take_profit": draw(leg(toward_profit)),
    }
    for name in ("limit_price", "stop_price", "trail_price"):
        arguments[name] = draw(valid_prices) if name in used else None
    return arguments


def place(arguments: dict[str, Any], allow_brackets: bool, allow_trailing_stop: bool) -> None:
    """Place and check the request, or check that the refusal is a local error."""
    if any(arguments[name] is None for name in ("contract_id", "side", "type")):
        with pytest.raises(TypeError, match="place_order needs"):
            rest.place_order(**arguments)
        return
    try:
        operation = rest.place_order(
            **arguments, allow_brackets=allow_brackets, allow_trailing_stop=allow_trailing_stop
        )
    except FeatureDisabled:
        assert held_back_by_a_feature_switch(arguments, allow_brackets, allow_trailing_stop)
        return
    except LocalProtocolError:
        return
    assert_place_body(operation, arguments)


@SETTINGS
@given(order_arguments(), st.booleans(), st.booleans())
def test_an_order_is_built_and_sent_exactly_as_given_or_refused_as_a_local_error(
    arguments: dict[str, Any], allow_brackets: bool, allow_trailing_stop: bool
) -> None:
    try:
        order = OrderRequest(**arguments)
    except LocalProtocolError:
        pass
    else:
        assert_order_fields(order, arguments)
    place(arguments, allow_brackets, allow_trailing_stop)


@SETTINGS
@given(valid_order_arguments())
def test_every_valid_order_is_sent_exactly_as_given(arguments: dict[str, Any]) -> None:
    order = OrderRequest(**arguments)
    assert_order_fields(order, arguments)
    operation = rest.place_order(**arguments, allow_brackets=True, allow_trailing_stop=True)
    assert_place_body(operation, arguments)
    assert operation.context["request"] == order
    again = rest.place_order(order, allow_brackets=True, allow_trailing_stop=True)
    assert again.request.body == operation.request.body
    if order.has_brackets or order.type is OrderType.TRAILING_STOP:
        with pytest.raises(FeatureDisabled):
            rest.place_order(**arguments)
    else:
        assert rest.place_order(**arguments).request.body == operation.request.body


def test_a_valid_order_is_sent_with_every_field_it_was_given() -> None:
    operation = rest.place_order(
        7,
        CONTRACT,
        OrderSide.SELL,
        OrderType.STOP_LIMIT,
        2,
        limit_price="6150.25",
        stop_price=Decimal("6151.00"),
        custom_tag="tf-abc",
        stop_loss=Bracket(10, OrderType.STOP),
        take_profit=Bracket(-20, OrderType.LIMIT),
        allow_brackets=True,
    )
    assert body_of(operation) == {
        "accountId": 7,
        "contractId": CONTRACT,
        "type": int(OrderType.STOP_LIMIT),
        "side": int(OrderSide.SELL),
        "size": 2,
        "limitPrice": 6150.25,
        "stopPrice": 6151,
        "customTag": "tf-abc",
        "stopLossBracket": {"ticks": 10, "type": int(OrderType.STOP)},
        "takeProfitBracket": {"ticks": -20, "type": int(OrderType.LIMIT)},
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account_id", True),
        ("account_id", 7.0),
        ("contract_id", "CON F"),
        ("contract_id", "C" * 1_000_000),
        ("size", "1"),
        ("size", 1.0),
        ("size", True),
        ("size", bounds.MAX_SIZE + 1),
        ("limit_price", "NaN"),
        ("limit_price", Decimal("1E+1000000000")),
        ("limit_price", float("inf")),
        ("custom_tag", "tag\n"),
        ("custom_tag", "x" * (bounds.MAX_TAG + 1)),
    ],
)
def test_a_bad_order_field_is_refused_naming_it(field: str, value: object) -> None:
    arguments: dict[str, Any] = {
        "account_id": 7,
        "contract_id": CONTRACT,
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "size": 1,
        "limit_price": "6150.25",
        field: value,
    }
    with pytest.raises(InvalidValue) as caught:
        rest.place_order(**arguments)
    assert caught.value.name == field


@pytest.mark.parametrize("leg_type", ["limit", None, 1.5, float("inf"), float("nan"), [4]])
def test_a_bracket_whose_type_is_not_an_order_type_is_refused_as_a_local_error(
    leg_type: Any,
) -> None:
    leg = Bracket(12, leg_type)
    with pytest.raises(LocalProtocolError):
        rest.place_order(
            7, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, take_profit=leg, allow_brackets=True
        )


@pytest.mark.parametrize("leg", ["stop", 5, Decimal(-5), {"ticks": -5, "type": 4}])
def test_a_bracket_that_is_not_a_bracket_is_refused_as_a_local_error(leg: object) -> None:
    given_leg: Any = leg
    with pytest.raises(LocalProtocolError):
        OrderRequest(7, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, stop_loss=given_leg)


def test_a_wrong_take_profit_is_reported_as_the_take_profit_even_when_it_is_the_stop_loss() -> None:
    leg = Bracket(-8, OrderType.STOP)
    with pytest.raises(LocalProtocolError, match=r"^take_profit ticks must be positive"):
        OrderRequest(
            7, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, stop_loss=leg, take_profit=leg
        )


# --- OrderModification and modify_order ----------------------------------------------------


@st.composite
def modify_arguments(draw: st.DrawFn) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "account_id": draw(mixed(valid_ids)),
        "order_id": draw(mixed(valid_ids)),
    }
    for name, valid in (
        ("size", valid_sizes),
        ("limit_price", valid_prices),
        ("stop_price", valid_prices),
        ("trail_price", valid_prices),
    ):
        arguments[name] = draw(st.one_of(st.none(), mixed(valid)))
    return arguments


@st.composite
def valid_modify_arguments(draw: st.DrawFn) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "account_id": draw(valid_ids),
        "order_id": draw(valid_ids),
        "size": draw(st.one_of(st.none(), valid_sizes)),
    }
    for name in ("limit_price", "stop_price", "trail_price"):
        arguments[name] = draw(st.one_of(st.none(), valid_prices))
    changes = ("size", "limit_price", "stop_price", "trail_price")
    if all(arguments[name] is None for name in changes):
        arguments[draw(st.sampled_from(changes))] = 1
    return arguments


def assert_modification(change: OrderModification, arguments: dict[str, Any]) -> None:
    assert change.account_id == arguments["account_id"]
    assert change.order_id == arguments["order_id"]
    assert change.size == arguments["size"]
    for name in ("limit_price", "stop_price", "trail_price"):
        given_value = arguments[name]
        kept = getattr(change, name)
        assert (kept is None) if given_value is None else (kept == as_decimal(given_value))


def assert_modify_body(operation: Operation[Any], arguments: dict[str, Any]) -> None:
    body = body_of(operation)
    assert operation.name == "Order/modify"
    assert operation.safety is Safety.WRITE
    assert body["accountId"] == arguments["account_id"]
    assert body["orderId"] == arguments["order_id"]
    if arguments["size"] is None:
        assert "size" not in body
    else:
        assert body["size"] == arguments["size"]
    assert_price(body, "limitPrice", arguments["limit_price"])
    assert_price(body, "stopPrice", arguments["stop_price"])
    assert_price(body, "trailPrice", arguments["trail_price"])
    context = operation.context
    assert context["change"] is Change.MODIFY
    assert context["account_id"] == arguments["account_id"]
    assert context["order_id"] == arguments["order_id"]
    request = context["request"]
    assert isinstance(request, OrderModification)
    assert_modification(request, arguments)


@SETTINGS
@given(modify_arguments(), st.booleans())
def test_a_modification_is_built_and_sent_exactly_as_given_or_refused_as_a_local_error(
    arguments: dict[str, Any], allow_trailing_stop: bool
) -> None:
    try:
        change = OrderModification(**arguments)
    except LocalProtocolError:
        pass
    else:
        assert_modification(change, arguments)
    if arguments["order_id"] is None:
        with pytest.raises(TypeError, match="modify_order needs"):
            rest.modify_order(**arguments)
        return
    try:
        operation = rest.modify_order(**arguments, allow_trailing_stop=allow_trailing_stop)
    except FeatureDisabled:
        assert OrderModification(**arguments).trail_price is not None
        assert not allow_trailing_stop
        return
    except LocalProtocolError:
        return
    assert_modify_body(operation, arguments)


@SETTINGS
@given(valid_modify_arguments())
def test_every_valid_modification_is_sent_exactly_as_given(arguments: dict[str, Any]) -> None:
    assert_modification(OrderModification(**arguments), arguments)
    operation = rest.modify_order(**arguments, allow_trailing_stop=True)
    assert_modify_body(operation, arguments)
    request = operation.context["request"]
    assert isinstance(request, OrderModification)
    assert rest.modify_order(request, allow_trailing_stop=True).request.body == (
        operation.request.body
    )
    if arguments["trail_price"] is not None:
        with pytest.raises(FeatureDisabled):
            rest.modify_order(**arguments)


def test_a_modification_that_changes_nothing_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="at least one field"):
        rest.modify_order(7, 99)


# --- cancel and close -----------------------------------------------------------------------


def cancel(account_id: Any, order_id: Any) -> None:
    operation = rest.cancel_order(account_id, order_id)
    assert operation.name == "Order/cancel"
    assert operation.safety is Safety.WRITE
    assert body_of(operation) == {"accountId": account_id, "orderId": order_id}
    assert operation.context == {
        "change": Change.CANCEL,
        "account_id": account_id,
        "order_id": order_id,
    }


def close(account_id: Any, contract_id: Any) -> None:
    operation = rest.close_position(account_id, contract_id)
    assert operation.name == "Position/closeContract"
    assert operation.safety is Safety.WRITE
    assert body_of(operation) == {"accountId": account_id, "contractId": contract_id}
    assert operation.context == {
        "change": Change.CLOSE,
        "account_id": account_id,
        "contract_id": contract_id,
    }


def partial_close(account_id: Any, contract_id: Any, size: Any) -> None:
    operation = rest.partial_close_position(account_id, contract_id, size)
    assert operation.name == "Position/partialCloseContract"
    assert operation.safety is Safety.WRITE
    assert body_of(operation) == {"accountId": account_id, "contractId": contract_id, "size": size}
    assert operation.context == {
        "change": Change.PARTIAL_CLOSE,
        "account_id": account_id,
        "contract_id": contract_id,
        "size": size,
    }


@SETTINGS
@given(mixed(valid_ids), mixed(valid_ids), mixed(valid_contracts), mixed(valid_sizes))
def test_cancels_and_closes_are_sent_exactly_as_given_or_refused_as_a_local_error(
    account_id: Any, order_id: Any, contract_id: Any, size: Any
) -> None:
    with contextlib.suppress(LocalProtocolError):
        cancel(account_id, order_id)
    with contextlib.suppress(LocalProtocolError):
        close(account_id, contract_id)
    with contextlib.suppress(LocalProtocolError):
        partial_close(account_id, contract_id, size)


@SETTINGS
@given(valid_ids, valid_ids, valid_contracts, valid_sizes)
def test_every_valid_cancel_and_close_is_sent_exactly_as_given(
    account_id: int, order_id: int, contract_id: str, size: int
) -> None:
    cancel(account_id, order_id)
    close(account_id, contract_id)
    partial_close(account_id, contract_id, size)


@pytest.mark.parametrize(
    ("call", "arguments", "field"),
    [
        (rest.cancel_order, (True, 99), "account_id"),
        (rest.cancel_order, (7, 0), "order_id"),
        (rest.cancel_order, (7, "99"), "order_id"),
        (rest.close_position, (7, "CON/F"), "contract_id"),
        (rest.close_position, (7.0, CONTRACT), "account_id"),
        (rest.partial_close_position, (7, CONTRACT, 0), "size"),
        (rest.partial_close_position, (7, CONTRACT, 2.0), "size"),
        (rest.partial_close_position, (7, " C", 1), "contract_id"),
        (rest.modify_order, (7, -1), "order_id"),
    ],
)
def test_a_bad_argument_to_cancel_or_close_is_refused_naming_it(
    call: Callable[..., object], arguments: tuple[Any, ...], field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        call(*arguments)
    assert caught.value.name == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"size": True}, "size"),
        ({"size": 0}, "size"),
        ({"limit_price": float("nan")}, "limit_price"),
        ({"stop_price": "1E+300000"}, "stop_price"),
        ({"trail_price": -1}, "trail_price"),
    ],
)
def test_a_bad_modification_is_refused_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        rest.modify_order(7, 99, **changes, allow_trailing_stop=True)
    assert caught.value.name == field


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(
            lambda n: OrderRequest(n, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1),
            "account_id",
            id="OrderRequest",
        ),
        pytest.param(lambda n: OrderModification(7, n, size=1), "order_id", id="OrderModification"),
        pytest.param(
            lambda n: rest.place_order(7, CONTRACT, OrderSide.BUY, OrderType.MARKET, n),
            "size",
            id="place_order",
        ),
        pytest.param(lambda n: rest.modify_order(n, 99, size=1), "account_id", id="modify_order"),
        pytest.param(lambda n: rest.cancel_order(7, n), "order_id", id="cancel_order"),
        pytest.param(lambda n: rest.close_position(n, CONTRACT), "account_id", id="close_position"),
        pytest.param(
            lambda n: rest.partial_close_position(7, CONTRACT, n), "size", id="partial_close"
        ),
    ],
)
def test_an_int_too_long_to_print_is_refused_by_every_order_call(
    call: Callable[[int], object], field: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        call(HUGE_INT)
    assert caught.value.name == field
