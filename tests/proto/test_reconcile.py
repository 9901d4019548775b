"""The reconciler: an uncertain change is never called "not applied" while it could still land."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core import jsoncodec
from tradeforge_proto.core.enums import OrderSide, OrderStatus, OrderType, PositionSide
from tradeforge_proto.core.errors import OrderUncertain, ServerError
from tradeforge_proto.core.models import Order, OrderModification, OrderRequest, Position
from tradeforge_proto.core.operations import Change, Operation
from tradeforge_proto.providers.topstepx import TopStepX
from tradeforge_proto.reconcile import (
    CLOSE_SLACK,
    MIN_WINDOW,
    POLL_INTERVAL,
    TAG_SLACK,
    Outcome,
    Reconciler,
    Reconciliation,
    processing_window,
)

PROVIDER = TopStepX()
ACCOUNT = 7
ORDER_ID = 99
CONTRACT = "CON.F.US.MES.Z26"
OTHER = "CON.F.US.MNQ.Z26"
TAG = "tf-1752872400000-ab12"
SENT = datetime(2025, 7, 18, 21, 0, tzinfo=UTC)
T = SENT.timestamp()
WINDOW = 5.0
DEADLINE = T + WINDOW
MODIFY = OrderModification(ACCOUNT, ORDER_ID, size=3, limit_price="6150.25")
LOST = ServerError(None, endpoint="Order/searchById", status=503)


def uncertain(
    change: Change | None,
    *,
    custom_tag: str | None = TAG,
    order_id: int | None = ORDER_ID,
    contract_id: str | None = CONTRACT,
    size: int | None = 2,
    request: object | None = None,
    sent_at: datetime | None = SENT,
) -> OrderUncertain:
    return OrderUncertain(
        "Order/place",
        account_id=ACCOUNT,
        custom_tag=custom_tag,
        contract_id=contract_id,
        sent_at=sent_at,
        change=change,
        order_id=order_id,
        size=size,
        request=request,
    )


def reconciler(
    change: Change | None,
    *,
    now: float = T + 1,
    wait: bool = True,
    window: float = WINDOW,
    poll_interval: float = POLL_INTERVAL,
    **details: Any,
) -> Reconciler:
    return Reconciler(
        PROVIDER,
        uncertain(change, **details),
        window=window,
        now=now,
        wait=wait,
        poll_interval=poll_interval,
    )


def order(
    *,
    order_id: int = ORDER_ID,
    status: OrderStatus = OrderStatus.OPEN,
    type: OrderType = OrderType.LIMIT,
    size: int = 1,
    contract_id: str = CONTRACT,
    custom_tag: str | None = None,
    created_at: datetime = SENT,
    limit_price: str | None = None,
) -> Order:
    return Order(
        order_id,
        ACCOUNT,
        contract_id,
        created_at,
        status,
        type,
        OrderSide.SELL,
        size,
        custom_tag=custom_tag,
        limit_price=None if limit_price is None else Decimal(limit_price),
    )


def position(contract_id: str = CONTRACT) -> Position:
    return Position(1, ACCOUNT, contract_id, SENT, PositionSide.LONG, 2, Decimal("6150.25"))


def body(operation: Operation[Any]) -> dict[str, Any]:
    decoded = jsoncodec.loads(operation.request.body)
    assert isinstance(decoded, dict)
    return decoded


def wire_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def look(r: Reconciler, value: object, at: float) -> Reconciliation | None:
    """One lookup started at ``at`` and answered at once."""
    r.lookup(at)
    return r.observed(value, at)


def seen_nothing(change: Change) -> object:
    """An answer in which the change is not seen (and nothing proves it cannot apply)."""
    if change is Change.CLOSE:
        return [position()]
    if change in (Change.CANCEL, Change.MODIFY):
        return order(status=OrderStatus.OPEN)
    return [order(custom_tag="someone-else", type=OrderType.LIMIT)]


def seen_applied(change: Change) -> object:
    """An answer that shows the change took effect."""
    if change is Change.PLACE:
        return [order(order_id=1), order(order_id=ORDER_ID, custom_tag=TAG)]
    if change is Change.CANCEL:
        return order(status=OrderStatus.CANCELLED)
    if change is Change.MODIFY:
        return order(size=3, limit_price="6150.250")
    if change is Change.CLOSE:
        return [position(OTHER)]
    return [order(type=OrderType.MARKET, size=2)]


# --- the processing window and settings -----------------------------------------------------


def test_the_processing_window_is_the_client_timeouts_but_never_below_the_minimum() -> None:
    assert processing_window(3.0, 10.0) == 13.0
    assert processing_window(0.5, 1.0) == MIN_WINDOW


@pytest.mark.parametrize(
    ("window", "poll_interval"),
    [(-1.0, POLL_INTERVAL), (WINDOW, 0.0), (WINDOW, -0.5), (math.nan, 0.5), (WINDOW, math.nan)],
)
def test_an_invalid_window_or_poll_interval_is_refused(window: float, poll_interval: float) -> None:
    with pytest.raises(ValueError, match=r"window|poll_interval"):
        reconciler(Change.PLACE, window=window, poll_interval=poll_interval)


def test_a_zero_window_is_allowed_and_puts_the_deadline_at_the_send_time() -> None:
    r = reconciler(Change.PLACE, window=0.0)
    assert r.deadline == T
    verdict = look(r, [], T + 1)
    assert verdict is not None
    assert verdict.not_applied


def test_without_a_send_time_the_window_starts_when_reconciling_starts() -> None:
    r = reconciler(Change.PLACE, sent_at=None, now=T + 100)
    assert r.deadline == T + 100 + WINDOW
    assert r.next_lookup == T + 100
    assert r.verdict is None


# --- nothing to look up: UNKNOWN at once ----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "details", "reason"),
    [
        (None, {}, "not a change"),
        (Change.PLACE, {"custom_tag": None}, "no custom tag"),
        (Change.PLACE, {"custom_tag": ""}, "no custom tag"),
        (Change.CANCEL, {"order_id": None}, "names no order"),
        (Change.MODIFY, {"order_id": None, "request": MODIFY}, "names no order"),
        (Change.CLOSE, {"contract_id": None}, "names no contract"),
        (Change.CLOSE, {"contract_id": ""}, "names no contract"),
        (Change.PARTIAL_CLOSE, {"contract_id": None}, "names no contract"),
        (Change.PARTIAL_CLOSE, {"size": None}, "names no size"),
    ],
)
def test_a_change_that_cannot_be_looked_up_is_unknown_at_once(
    change: Change | None, details: dict[str, Any], reason: str
) -> None:
    r = reconciler(change, now=DEADLINE + 60, **details)
    verdict = r.verdict
    assert verdict is not None
    assert verdict.outcome is Outcome.UNKNOWN
    assert verdict.unknown
    assert not verdict.applied
    assert not verdict.not_applied
    assert verdict.change is change
    assert reason in verdict.reason
    assert verdict.order is None
    with pytest.raises(RuntimeError, match="already known"):
        r.lookup(DEADLINE + 60)


def test_a_modification_without_the_requested_fields_is_unknown_rather_than_not_applied() -> None:
    r = reconciler(Change.MODIFY, request=None)
    verdict = r.verdict or look(r, order(size=3, limit_price="6150.25"), DEADLINE + 1)
    assert verdict is not None
    assert verdict.outcome is Outcome.UNKNOWN


# --- what is looked up ----------------------------------------------------------------------


def test_a_placement_is_looked_up_by_tag_around_the_send_time() -> None:
    r = reconciler(Change.PLACE)
    operation = r.lookup(T + 3)
    assert operation.name == "Order/search"
    assert body(operation) == {
        "accountId": ACCOUNT,
        "startTimestamp": wire_time(SENT - TAG_SLACK),
        "endTimestamp": wire_time(SENT + timedelta(seconds=3) + TAG_SLACK),
    }


def test_a_partial_close_is_looked_up_in_a_narrow_window_around_the_send_time() -> None:
    r = reconciler(Change.PARTIAL_CLOSE)
    operation = r.lookup(T + 3)
    assert operation.name == "Order/search"
    assert body(operation) == {
        "accountId": ACCOUNT,
        "startTimestamp": wire_time(SENT - CLOSE_SLACK),
        "endTimestamp": wire_time(SENT + timedelta(seconds=3) + CLOSE_SLACK),
    }


@pytest.mark.parametrize("change", [Change.CANCEL, Change.MODIFY])
def test_a_cancel_or_modify_is_looked_up_by_order_id(change: Change) -> None:
    operation = reconciler(change, request=MODIFY).lookup(T + 1)
    assert operation.name == "Order/searchById"
    assert body(operation) == {"accountId": ACCOUNT, "orderId": ORDER_ID}


def test_a_close_is_looked_up_in_the_open_positions() -> None:
    operation = reconciler(Change.CLOSE).lookup(T + 1)
    assert operation.name == "Position/searchOpen"
    assert body(operation) == {"accountId": ACCOUNT}


# --- place ----------------------------------------------------------------------------------


def test_a_placement_seen_by_its_tag_is_applied_even_before_the_deadline() -> None:
    r = reconciler(Change.PLACE)
    tagged = order(order_id=123, custom_tag=TAG)
    verdict = look(r, [order(order_id=1, custom_tag="other"), tagged], T + 1)
    assert verdict is not None
    assert verdict.applied
    assert verdict.outcome is Outcome.APPLIED
    assert verdict.order is tagged
    assert verdict.change is Change.PLACE
    assert TAG in verdict.reason
    assert "123" in verdict.reason
    assert r.verdict is verdict
    with pytest.raises(RuntimeError):
        r.lookup(T + 2)


def test_a_placement_not_seen_before_the_deadline_is_looked_for_again() -> None:
    r = reconciler(Change.PLACE)
    assert r.next_lookup == T + 1
    assert look(r, [order(custom_tag="other")], T + 1) is None
    assert r.verdict is None
    assert r.next_lookup == T + 1 + POLL_INTERVAL


def test_a_placement_not_seen_by_a_lookup_started_at_the_deadline_is_not_applied() -> None:
    r = reconciler(Change.PLACE)
    verdict = look(r, [], DEADLINE)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.outcome is Outcome.NOT_APPLIED
    assert verdict.order is None
    assert "2025-07-18T21:00:05.000+00:00" in verdict.reason


def test_a_lookup_started_before_the_deadline_never_proves_a_placement_absent() -> None:
    r = reconciler(Change.PLACE)
    r.lookup(DEADLINE - 0.001)
    assert r.observed([], DEADLINE + 30) is None
    assert r.next_lookup == DEADLINE + 30
    verdict = look(r, [], DEADLINE + 30)
    assert verdict is not None
    assert verdict.not_applied


def test_without_waiting_a_placement_not_seen_yet_is_unknown() -> None:
    r = reconciler(Change.PLACE, wait=False)
    verdict = look(r, [], T + 1)
    assert verdict is not None
    assert verdict.unknown
    assert "may still land until 2025-07-18T21:00:05.000+00:00" in verdict.reason


def test_without_waiting_a_placement_not_seen_after_the_deadline_is_not_applied() -> None:
    r = reconciler(Change.PLACE, wait=False, now=DEADLINE + 1)
    verdict = look(r, [], DEADLINE + 1)
    assert verdict is not None
    assert verdict.not_applied


def test_an_answer_that_is_not_a_list_of_orders_does_not_show_a_placement() -> None:
    r = reconciler(Change.PLACE)
    assert look(r, None, T + 1) is None
    assert look(r, ["not an order", position()], T + 2) is None


# --- cancel ---------------------------------------------------------------------------------


def test_a_cancelled_order_means_the_cancel_applied() -> None:
    cancelled = order(status=OrderStatus.CANCELLED)
    verdict = look(reconciler(Change.CANCEL), cancelled, T + 1)
    assert verdict is not None
    assert verdict.applied
    assert verdict.order is cancelled
    assert "cancelled" in verdict.reason


@pytest.mark.parametrize("status", [OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.EXPIRED])
def test_an_order_that_ended_otherwise_means_the_cancel_cannot_apply(status: OrderStatus) -> None:
    ended = order(status=status)
    verdict = look(reconciler(Change.CANCEL), ended, T + 1)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.order is ended
    assert status.name in verdict.reason


@pytest.mark.parametrize(
    "status", [OrderStatus.OPEN, OrderStatus.PENDING, OrderStatus.SUSPENDED, OrderStatus.NONE]
)
def test_a_working_order_means_the_cancel_may_still_land_until_the_deadline(
    status: OrderStatus,
) -> None:
    working = order(status=status)
    r = reconciler(Change.CANCEL)
    assert look(r, working, T + 1) is None
    verdict = look(r, working, DEADLINE)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.order is working


def test_without_waiting_a_working_order_leaves_the_cancel_unknown() -> None:
    working = order()
    verdict = look(reconciler(Change.CANCEL, wait=False), working, T + 1)
    assert verdict is not None
    assert verdict.unknown
    assert verdict.order is working


def test_an_answer_that_is_not_an_order_does_not_decide_a_cancel() -> None:
    r = reconciler(Change.CANCEL)
    assert look(r, [order(status=OrderStatus.CANCELLED)], T + 1) is None
    verdict = look(r, None, DEADLINE)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.order is None


# --- modify ---------------------------------------------------------------------------------


def test_an_order_carrying_the_requested_fields_means_the_modify_applied() -> None:
    modified = order(size=3, limit_price="6150.250")
    verdict = look(reconciler(Change.MODIFY, request=MODIFY), modified, T + 1)
    assert verdict is not None
    assert verdict.applied
    assert verdict.order is modified
    assert "requested changes" in verdict.reason


def test_a_modify_is_judged_only_on_the_fields_it_sets() -> None:
    change = OrderModification(ACCOUNT, ORDER_ID, limit_price=6200)
    moved = order(size=5, limit_price="6200")
    verdict = look(reconciler(Change.MODIFY, request=change), moved, T + 1)
    assert verdict is not None
    assert verdict.applied


def test_a_filled_order_that_carries_the_modification_still_counts_as_applied() -> None:
    filled = order(status=OrderStatus.FILLED, size=3, limit_price="6150.25")
    verdict = look(reconciler(Change.MODIFY, request=MODIFY), filled, T + 1)
    assert verdict is not None
    assert verdict.applied


@pytest.mark.parametrize(
    "status", [OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED]
)
def test_a_finished_order_without_the_modification_means_it_cannot_apply(
    status: OrderStatus,
) -> None:
    ended = order(status=status, size=1, limit_price="6150.25")
    verdict = look(reconciler(Change.MODIFY, request=MODIFY), ended, T + 1)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.order is ended
    assert "unmodified" in verdict.reason


def test_a_working_order_without_the_modification_is_looked_at_until_the_deadline() -> None:
    r = reconciler(Change.MODIFY, request=MODIFY)
    unmodified = order(size=3, limit_price="6100")
    assert look(r, unmodified, T + 1) is None
    verdict = look(r, unmodified, DEADLINE + 0.1)
    assert verdict is not None
    assert verdict.not_applied
    assert verdict.order is unmodified


# --- close ----------------------------------------------------------------------------------


def test_no_position_left_on_the_contract_means_the_close_applied() -> None:
    verdict = look(reconciler(Change.CLOSE), [position(OTHER), "noise"], T + 1)
    assert verdict is not None
    assert verdict.applied
    assert verdict.order is None
    assert CONTRACT in verdict.reason


def test_a_position_still_open_means_the_close_may_still_land_until_the_deadline() -> None:
    r = reconciler(Change.CLOSE)
    assert look(r, [position()], T + 1) is None
    verdict = look(r, [position(), position(OTHER)], DEADLINE)
    assert verdict is not None
    assert verdict.not_applied


# --- partial close --------------------------------------------------------------------------


def test_the_latest_untagged_market_order_of_the_size_on_the_contract_is_the_partial_close() -> (
    None
):
    early = order(order_id=1, type=OrderType.MARKET, size=2, created_at=SENT)
    late = order(order_id=2, type=OrderType.MARKET, size=2, created_at=SENT + timedelta(seconds=1))
    decoys = [
        order(order_id=3, type=OrderType.MARKET, size=2, custom_tag="mine"),
        order(order_id=4, type=OrderType.MARKET, size=1),
        order(order_id=5, type=OrderType.LIMIT, size=2),
        order(order_id=6, type=OrderType.MARKET, size=2, contract_id=OTHER),
    ]
    verdict = look(reconciler(Change.PARTIAL_CLOSE), [early, *decoys, late], T + 1)
    assert verdict is not None
    assert verdict.applied
    assert verdict.order is late
    assert "order 2 on CON.F.US.MES.Z26 is the partial close" in verdict.reason


def test_orders_that_do_not_match_the_partial_close_leave_it_unseen() -> None:
    decoys = [
        order(order_id=3, type=OrderType.MARKET, size=2, custom_tag="mine"),
        order(order_id=4, type=OrderType.MARKET, size=1),
        order(order_id=6, type=OrderType.MARKET, size=2, contract_id=OTHER),
    ]
    r = reconciler(Change.PARTIAL_CLOSE)
    assert look(r, decoys, T + 1) is None
    verdict = look(r, decoys, DEADLINE)
    assert verdict is not None
    assert verdict.unknown  # matched only by shape: not seeing it proves nothing
    assert "cannot be proved absent" in verdict.reason


def test_a_market_order_from_long_before_the_send_is_not_taken_for_the_partial_close() -> None:
    old = order(type=OrderType.MARKET, size=2, created_at=SENT - timedelta(hours=1))
    verdict = look(reconciler(Change.PARTIAL_CLOSE), [old], DEADLINE)
    assert verdict is not None
    assert not verdict.applied
    assert verdict.unknown


# --- failed lookups -------------------------------------------------------------------------


def test_a_failed_lookup_is_tried_again_until_the_give_up_time() -> None:
    r = reconciler(Change.CANCEL)
    r.lookup(T + 1)
    assert r.failed(LOST, T + 1.2) is None
    assert r.next_lookup == T + 1.2 + POLL_INTERVAL
    r.lookup(DEADLINE + WINDOW - 0.5)
    assert r.failed(LOST, DEADLINE + WINDOW - 0.1) is None
    r.lookup(DEADLINE + WINDOW)
    verdict = r.failed(LOST, DEADLINE + WINDOW)
    assert verdict is not None
    assert verdict.unknown
    assert verdict.reason.startswith("the lookup failed: ")
    assert "HTTP 503" in verdict.reason
    assert r.verdict is verdict


def test_a_lookup_that_works_after_failures_still_decides() -> None:
    r = reconciler(Change.PLACE)
    r.lookup(T + 1)
    assert r.failed(LOST, T + 2) is None
    verdict = look(r, [order(custom_tag=TAG)], T + 3)
    assert verdict is not None
    assert verdict.applied


def test_without_waiting_a_failed_lookup_is_unknown_at_once() -> None:
    r = reconciler(Change.PLACE, wait=False)
    r.lookup(T + 1)
    verdict = r.failed(TimeoutError("read timed out"), T + 1.5)
    assert verdict is not None
    assert verdict.unknown
    assert "read timed out" in verdict.reason


# --- the schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "poll"), [(5.0, 0.5), (5.0, 0.7), (5.0, 3.0), (0.3, 0.5)])
def test_lookups_follow_the_poll_interval_and_the_last_starts_exactly_at_the_deadline(
    window: float, poll: float
) -> None:
    r = reconciler(Change.PLACE, now=T, window=window, poll_interval=poll)
    starts: list[float] = []
    while r.verdict is None:
        start = r.next_lookup
        starts.append(start)
        look(r, [], start)
        assert len(starts) < 100
    verdict = r.verdict
    assert verdict is not None
    assert verdict.not_applied
    assert starts[-1] == T + window
    assert all(start < T + window for start in starts[:-1])
    assert all(0 < b - a <= poll + 1e-6 for a, b in pairwise(starts))


def test_a_slow_answer_is_followed_by_the_next_lookup_at_once() -> None:
    r = reconciler(Change.PLACE, now=T)
    r.lookup(T)
    assert r.observed([], T + 2) is None
    assert r.next_lookup == T + 2


def test_the_last_lookup_waits_for_the_deadline_rather_than_the_poll_interval() -> None:
    r = reconciler(Change.PLACE, now=T, poll_interval=3.0)
    look(r, [], T + 4)
    assert r.next_lookup == DEADLINE


# --- any sequence of lookups ----------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, WINDOW]), st.floats(0, 3)),
        st.one_of(st.sampled_from([0.0, 0.5, WINDOW]), st.floats(0, 2)),
        st.sampled_from(["unseen", "unseen", "failed", "applied"]),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(Change),
    st.booleans(),
    st.tuples(st.sampled_from([0.0, 0.5, WINDOW]), st.sampled_from([0.1, POLL_INTERVAL, 2.0])),
    st.floats(0, 12),
    steps,
)
def test_not_applied_rests_on_a_lookup_started_after_the_deadline(
    change: Change,
    wait: bool,
    timing: tuple[float, float],
    start_after_send: float,
    plan: list[tuple[float, float, str, bool]],
) -> None:
    window, poll = timing
    now = T + start_after_send
    r = reconciler(change, now=now, wait=wait, window=window, poll_interval=poll, request=MODIFY)
    assert r.deadline == T + window
    for pause, duration, answer, on_schedule in plan:
        now = max(now + pause, r.next_lookup) if on_schedule else now + pause
        started = now
        r.lookup(started)
        now += duration
        if answer == "failed":
            verdict = r.failed(LOST, now)
        elif answer == "applied":
            verdict = r.observed(seen_applied(change), now)
            assert verdict is not None
            assert verdict.applied
        else:
            verdict = r.observed(seen_nothing(change), now)
        if verdict is None:
            assert wait
            assert r.verdict is None
            assert r.next_lookup >= now
            if answer != "failed":
                assert started < r.deadline
                assert r.next_lookup <= max(now, r.deadline)
            continue
        assert r.verdict is verdict
        assert verdict.change is change
        if verdict.not_applied:
            assert started >= r.deadline
        if verdict.unknown:
            late = started >= r.deadline and change is Change.PARTIAL_CLOSE
            assert answer == "failed" or not wait or late
            assert answer == "failed" or started < r.deadline or late
        with pytest.raises(RuntimeError):
            r.lookup(now)
        break


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(Change), st.booleans(), st.floats(0, 3), st.floats(0, 20))
def test_a_change_seen_applied_is_applied_whenever_it_is_seen(
    change: Change, wait: bool, started: float, answered: float
) -> None:
    r = reconciler(change, now=T, wait=wait, request=MODIFY)
    r.lookup(T + started)
    verdict = r.observed(seen_applied(change), T + started + answered)
    assert verdict is not None
    assert verdict.applied


def test_the_verdict_on_a_placement_carries_the_change_the_reason_and_the_order() -> None:
    placed = OrderRequest(ACCOUNT, CONTRACT, OrderSide.BUY, OrderType.MARKET, 1, custom_tag=TAG)
    r = reconciler(Change.PLACE, request=placed)
    verdict = look(r, [order(custom_tag=TAG)], T + 1)
    assert verdict == Reconciliation(
        Outcome.APPLIED,
        Change.PLACE,
        f"order {ORDER_ID} carries custom tag {TAG!r}",
        order(custom_tag=TAG),
    )


def test_an_order_pending_cancellation_means_the_cancel_landed() -> None:
    r = reconciler(Change.CANCEL)
    verdict = look(r, order(status=OrderStatus.PENDING_CANCELLATION), T + 1)
    assert verdict is not None
    assert verdict.outcome is Outcome.APPLIED
    assert "being cancelled" in verdict.reason


def test_no_answer_is_taken_once_the_outcome_is_known() -> None:
    r = reconciler(Change.CANCEL)
    assert look(r, order(status=OrderStatus.CANCELLED), T + 1) is not None
    with pytest.raises(RuntimeError, match="already known"):
        r.observed(order(status=OrderStatus.OPEN), T + 2)
    with pytest.raises(RuntimeError, match="already known"):
        r.failed(OSError("late"), T + 2)


def test_the_window_counts_from_when_the_client_gave_up_not_from_the_send() -> None:
    given_up = SENT + timedelta(seconds=30)  # queued behind other requests, then timed out
    late = OrderUncertain(
        "Order/place",
        account_id=ACCOUNT,
        custom_tag=TAG,
        contract_id=CONTRACT,
        sent_at=SENT,
        change=Change.PLACE,
        given_up_at=given_up,
    )
    r = Reconciler(PROVIDER, late, window=WINDOW, now=T + 31)
    assert r.deadline == T + 30 + WINDOW
    assert look(r, [], T + 31) is None  # long past sent + window, yet it may still land
    verdict = look(r, [], T + 30 + WINDOW)
    assert verdict is not None
    assert verdict.not_applied


def test_without_any_known_time_absence_is_never_proof() -> None:
    r = reconciler(Change.PLACE, now=T, sent_at=None)
    verdict = look(r, [], T + WINDOW + 1)
    assert verdict is not None
    assert verdict.unknown
    assert "no known send time" in verdict.reason
