"""Core enums, models, secrets, operations and the JSON codec, through their public API."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradeforge_proto.core import (
    BarRequest,
    BarUnit,
    Bracket,
    Contract,
    HttpRequest,
    LocalProtocolError,
    Operation,
    OrderModification,
    OrderRequest,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    RemoteProtocolError,
    Safety,
    Secret,
)
from tradeforge_proto.core.errors import OrderUncertain, ProviderError, ValidationFailed
from tradeforge_proto.core.jsoncodec import dumps, loads, to_decimal

T0 = datetime(2025, 7, 18, 21, 0, tzinfo=UTC)


def test_unknown_enum_values_are_kept_not_fatal():
    status = OrderStatus(42)
    assert status == 42
    assert status.name == "UNKNOWN_42"
    assert not status.is_known
    assert OrderStatus(42) is status
    assert OrderStatus.FILLED.is_known
    assert OrderStatus.parse("pending_cancellation") is OrderStatus.PENDING_CANCELLATION
    assert OrderStatus.parse(OrderStatus.OPEN) is OrderStatus.OPEN
    for bad in ("nope", True, 1.5, None):
        with pytest.raises(ValueError, match="not a valid OrderStatus"):
            OrderStatus.parse(bad)
    with pytest.raises(ValueError, match="not a valid OrderStatus"):
        OrderStatus("2")


def test_unknown_values_from_a_hostile_peer_do_not_grow_memory():
    from tradeforge_proto.core import DepthType

    before = len(DepthType._value2member_map_)
    for value in range(1000, 3000):
        assert DepthType(value).name == f"UNKNOWN_{value}"
    assert len(DepthType._value2member_map_) <= before + 32
    assert DepthType(2999) == 2999


def test_status_and_side_helpers():
    assert OrderStatus.FILLED.is_terminal
    assert not OrderStatus.FILLED.is_working
    assert OrderStatus.SUSPENDED.is_working
    assert not OrderStatus.OPEN.is_terminal
    assert OrderSide.BUY.opposite is OrderSide.SELL
    assert OrderSide.SELL.opposite is OrderSide.BUY


def test_contract_tick_math_is_exact():
    eur = Contract("CON.F.US.EU6.Z25", "6EZ5", "Euro FX", Decimal("0.00005"), Decimal("6.25"), True)
    assert eur.is_aligned(Decimal("1.08455"))
    assert not eur.is_aligned(Decimal("1.08452"))
    assert eur.ticks_between(Decimal("1.08400"), Decimal("1.08455")) == 11


def test_position_signed_size():
    short = Position(1, 2, "C", T0, PositionSide.SHORT, 3, Decimal("100.25"))
    assert short.signed_size == -3
    assert Position(1, 2, "C", T0, PositionSide.LONG, 3, Decimal(1)).signed_size == 3


def test_order_request_accepts_names_ints_and_float_prices_exactly():
    order = OrderRequest(1, "C", "buy", 1, 2, limit_price=5000.1)
    assert order.side is OrderSide.BUY
    assert order.type is OrderType.LIMIT
    assert order.limit_price == Decimal("5000.1")
    assert OrderRequest(1, "C", 1, OrderType.STOP, 1, stop_price="4990.25").stop_price == Decimal(
        "4990.25"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be from 1 to"),
        ({"size": True}, "size must be a whole number"),
        ({"type": OrderType.LIMIT}, "needs limit_price"),
        ({"limit_price": 1}, "does not take limit_price"),
        ({"type": OrderType.UNKNOWN}, "cannot be placed"),
        ({"type": 99}, "cannot be placed"),
        ({"side": 7}, "unknown order side"),
        ({"custom_tag": "  "}, "custom_tag must be printable"),
        ({"limit_price": -1, "type": OrderType.LIMIT}, "limit_price must be above 0"),
        ({"limit_price": "abc", "type": OrderType.LIMIT}, "must be plain decimal text"),
        ({"limit_price": True, "type": OrderType.LIMIT}, "not a bool"),
        ({"limit_price": object(), "type": OrderType.LIMIT}, "limit_price must be a number"),
        ({"stop_loss": Bracket(10, OrderType.STOP)}, "stop_loss ticks must be negative"),
        ({"take_profit": Bracket(-10, OrderType.LIMIT)}, "take_profit ticks must be positive"),
        (
            {"side": OrderSide.SELL, "stop_loss": Bracket(-10, OrderType.STOP)},
            "stop_loss ticks must be positive",
        ),
        ({"take_profit": Bracket(0, OrderType.LIMIT)}, "take_profit ticks"),
    ],
)
def test_invalid_orders_are_refused_before_anything_is_sent(kwargs, message):
    base = {
        "account_id": 1,
        "contract_id": "C",
        "side": OrderSide.BUY,
        "type": OrderType.MARKET,
        "size": 1,
    }
    with pytest.raises(LocalProtocolError, match=message):
        OrderRequest(**{**base, **kwargs})


def test_bracket_signs_for_each_side():
    buy = OrderRequest(
        1,
        "C",
        OrderSide.BUY,
        OrderType.MARKET,
        1,
        stop_loss=Bracket(-8, OrderType.STOP),
        take_profit=Bracket(16, OrderType.LIMIT),
    )
    assert buy.has_brackets
    sell = OrderRequest(
        1, "C", OrderSide.SELL, OrderType.MARKET, 1, stop_loss=Bracket(8, OrderType.STOP)
    )
    assert sell.has_brackets
    assert not OrderRequest(1, "C", OrderSide.SELL, OrderType.MARKET, 1).has_brackets


def test_modification_must_change_something():
    with pytest.raises(LocalProtocolError, match="at least one field"):
        OrderModification(1, 2)
    with pytest.raises(LocalProtocolError, match="size must be from 1 to"):
        OrderModification(1, 2, size=0)
    assert OrderModification(1, 2, limit_price="10.5").limit_price == Decimal("10.5")


def test_bar_request_validation():
    ok = BarRequest("C", "minute", 5, T0, T0)
    assert ok.unit is BarUnit.MINUTE
    with pytest.raises(LocalProtocolError, match="cannot be requested"):
        BarRequest("C", BarUnit.UNSPECIFIED, 1, T0, T0)
    with pytest.raises(LocalProtocolError, match="timezone-aware"):
        BarRequest("C", BarUnit.HOUR, 1, datetime(2025, 1, 1), T0)
    with pytest.raises(LocalProtocolError, match="after end"):
        BarRequest("C", BarUnit.HOUR, 1, T0, datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(LocalProtocolError, match="positive whole number"):
        BarRequest("C", BarUnit.HOUR, 0, T0, T0)


def test_secret_hides_itself():
    secret = Secret("eyJhbGciOiJIUzI1NiJ9.payload.sig")
    assert "eyJ" not in repr(secret)
    assert "eyJ" not in str(secret)
    assert "eyJ" not in f"{secret}"
    assert secret.reveal().startswith("eyJ")
    assert secret
    assert not Secret("")


def test_request_headers_and_masking():
    request = HttpRequest("POST", "/api/x", (("Content-Type", "application/json"),), b"{}")
    authorized = request.with_header("Authorization", "Bearer abc.def")
    assert authorized.header("authorization") == "Bearer abc.def"
    assert "abc.def" not in repr(authorized)
    replaced = authorized.with_header("AUTHORIZATION", "Bearer new")
    assert [v for k, v in replaced.headers if k.lower() == "authorization"] == ["Bearer new"]
    assert request.header("missing") is None
    for name, value in (("Bad:Name", "x"), ("X", "a\r\nInjected: 1"), ("", "x")):
        with pytest.raises(LocalProtocolError, match="invalid header"):
            request.with_header(name, value)


def test_operation_parse_and_map():
    op = Operation(
        "Demo/echo",
        HttpRequest("POST", "/api/Demo/echo"),
        parser=lambda response: (response.status, response.header("X-Thing"), response.body),
        safety=Safety.WRITE,
    )
    assert not op.retryable
    assert op.parse(200, {"X-Thing": "1"}, b"hi") == (200, "1", b"hi")
    assert op.parse(201, (("x-thing", "2"),)).__getitem__(1) == "2"
    mapped = op.map(lambda value: value[0] * 2)
    assert mapped.parse(200) == 400
    assert mapped.safety is Safety.WRITE
    assert mapped.request is op.request


def test_json_codec_is_exact_or_refuses():
    assert dumps({"p": Decimal("6335.250"), "i": Decimal(12), "t": T0}) == (
        b'{"p":6335.25,"i":12,"t":"2025-07-18T21:00:00+00:00"}'
    )
    with pytest.raises(LocalProtocolError, match="more digits"):
        dumps(Decimal("1.234567890123456789"))
    with pytest.raises(LocalProtocolError, match="non-finite"):
        dumps(Decimal("NaN"))
    with pytest.raises(LocalProtocolError, match="cannot encode"):
        dumps({"x": object()})
    with pytest.raises(RemoteProtocolError, match="invalid JSON"):
        loads(b"<html>")
    assert to_decimal(6335.25) == Decimal("6335.25")
    assert to_decimal(" 0.00005 ") == Decimal("0.00005")
    assert to_decimal(3) == 3
    for bad in (True, "x", "NaN", None, [1]):
        with pytest.raises(ValueError, match="expected a number"):
            to_decimal(bad)


def test_error_messages_carry_the_providers_words():
    err = ProviderError(
        "Invalid order size", endpoint="Order/place", status=200, code=2, code_name="OrderRejected"
    )
    assert str(err) == "Order/place: OrderRejected (2) - Invalid order size"
    assert str(ProviderError(None, endpoint="X", status=503)) == "X: HTTP 503"
    failed = ValidationFailed("bad", endpoint="X", status=400, errors={"size": ("too big",)})
    assert "size: too big" in str(failed)
    uncertain = OrderUncertain(
        "Order/place",
        account_id=7,
        custom_tag="t-1",
        contract_id="C",
        sent_at=T0,
        cause=OSError("reset"),
    )
    assert "t-1" in str(uncertain)
    assert "reset" in str(uncertain)
    assert uncertain.sent_at == T0


def test_decimal_cache_stays_bounded_and_refuses_non_finite_floats():
    from tradeforge_proto.core import jsoncodec

    for bad in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite"):
            to_decimal(bad)
    for i in range(jsoncodec._DECIMALS_MAX + 10):
        assert to_decimal(i + 0.5) == Decimal(i) + Decimal("0.5")
    assert len(jsoncodec._DECIMALS) <= jsoncodec._DECIMALS_MAX
