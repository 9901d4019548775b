"""Client-side rate limiting, driven by a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.core.errors import ConfigurationError, LocalProtocolError
from tradeforge_proto.core.operations import RateBucket
from tradeforge_proto.limits import DEFAULT_BUDGETS, RateBudget, RateLimiter

GENERAL = RateBucket.GENERAL
HISTORY = RateBucket.HISTORY
T0 = 1_700_000_000.0


def fill(
    limiter: RateLimiter, bucket: RateBucket, count: int, start: float, spacing: float
) -> float:
    """Send ``count`` requests ``spacing`` seconds apart from ``start``; the time of the last."""
    now = start
    for index in range(count):
        now = start + index * spacing
        assert limiter.delay(bucket, now) == 0.0
        limiter.acquire(bucket, now)
    return now


class TestRateBudget:
    def test_defaults_match_the_gateway(self) -> None:
        assert DEFAULT_BUDGETS[GENERAL] == RateBudget(200, 60.0)
        assert DEFAULT_BUDGETS[HISTORY] == RateBudget(50, 30.0)

    def test_window_is_a_float(self) -> None:
        budget = RateBudget(30, 30)
        assert budget.window == 30.0
        assert isinstance(budget.window, float)

    @pytest.mark.parametrize("limit", [0, -1, True])
    def test_limit_must_be_positive(self, limit: int) -> None:
        with pytest.raises(ConfigurationError, match="limit"):
            RateBudget(limit, 60.0)

    @pytest.mark.parametrize("window", [0.0, -1.0, math.nan, math.inf])
    def test_window_must_be_positive_and_finite(self, window: float) -> None:
        with pytest.raises(ConfigurationError, match="window"):
            RateBudget(10, window)

    def test_default_budgets_cannot_be_changed(self) -> None:
        with pytest.raises(TypeError):
            DEFAULT_BUDGETS[GENERAL] = RateBudget(1, 1.0)  # type: ignore[index]


class TestSlidingWindow:
    def test_first_requests_go_at_once(self) -> None:
        limiter = RateLimiter()
        assert limiter.delay(GENERAL, T0) == 0.0
        assert limiter.ready_at(GENERAL, T0) == T0
        limiter.acquire(GENERAL, T0)
        assert limiter.used(GENERAL, T0) == 1

    def test_201st_request_waits_exactly_until_the_oldest_leaves(self) -> None:
        limiter = RateLimiter()
        last = fill(limiter, GENERAL, 200, T0, 0.1)
        now = last + 0.05
        assert limiter.ready_at(GENERAL, now) == T0 + 60.0
        assert limiter.delay(GENERAL, now) == pytest.approx(T0 + 60.0 - now)
        with pytest.raises(LocalProtocolError, match="general"):
            limiter.acquire(GENERAL, now)
        assert limiter.delay(GENERAL, T0 + 60.0) == 0.0
        limiter.acquire(GENERAL, T0 + 60.0)
        # The next one waits for the second oldest.
        assert limiter.ready_at(GENERAL, T0 + 60.0) == T0 + 0.1 + 60.0

    def test_burst_then_wait(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(3, 10.0)})
        fill(limiter, GENERAL, 3, T0, 0.0)
        assert limiter.delay(GENERAL, T0 + 4.0) == 6.0
        assert limiter.used(GENERAL, T0 + 4.0) == 3
        assert limiter.used(GENERAL, T0 + 10.0) == 0

    def test_memory_is_bounded_by_the_limit(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(5, 1.0)})
        for index in range(1000):
            limiter.acquire(GENERAL, T0 + index)
        assert limiter.used(GENERAL, T0 + 999) == 1
        assert len(limiter._logs[GENERAL]) == 5

    def test_history_is_independent_of_general(self) -> None:
        limiter = RateLimiter()
        fill(limiter, HISTORY, 50, T0, 0.0)
        assert limiter.delay(HISTORY, T0 + 1.0) == 29.0
        assert limiter.delay(GENERAL, T0 + 1.0) == 0.0
        assert limiter.used(GENERAL, T0 + 1.0) == 0
        fill(limiter, GENERAL, 200, T0 + 1.0, 0.0)
        assert limiter.used(HISTORY, T0 + 1.0) == 50
        assert limiter.delay(HISTORY, T0 + 30.0) == 0.0
        assert limiter.delay(GENERAL, T0 + 30.0) == 31.0

    def test_configurable_history_budget(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(200, 60.0), HISTORY: RateBudget(30, 30.0)})
        fill(limiter, HISTORY, 30, T0, 0.0)
        assert limiter.delay(HISTORY, T0) == 30.0

    def test_bucket_without_budget_is_not_limited(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(1, 60.0)})
        fill(limiter, HISTORY, 500, T0, 0.0)
        assert limiter.used(HISTORY, T0) == 0
        assert limiter.delay(GENERAL, T0) == 0.0

    def test_budgets_are_read_only(self) -> None:
        limiter = RateLimiter()
        assert dict(limiter.budgets) == dict(DEFAULT_BUDGETS)
        with pytest.raises(TypeError):
            limiter.budgets[GENERAL] = RateBudget(1, 1.0)  # type: ignore[index]

    def test_repr(self) -> None:
        assert "general" in repr(RateLimiter())


class TestPenalty:
    def test_penalty_blocks_until_the_given_time(self) -> None:
        limiter = RateLimiter()
        limiter.penalize(GENERAL, T0 + 5.0)
        assert limiter.delay(GENERAL, T0) == 5.0
        assert limiter.delay(HISTORY, T0) == 0.0
        with pytest.raises(LocalProtocolError):
            limiter.acquire(GENERAL, T0 + 4.9)
        limiter.acquire(GENERAL, T0 + 5.0)

    def test_longest_penalty_wins(self) -> None:
        limiter = RateLimiter()
        limiter.penalize(GENERAL, T0 + 5.0)
        limiter.penalize(GENERAL, T0 + 2.0)
        assert limiter.ready_at(GENERAL, T0) == T0 + 5.0
        limiter.penalize(GENERAL, T0 + 9.0)
        assert limiter.ready_at(GENERAL, T0) == T0 + 9.0

    def test_penalty_and_full_window_combine(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(1, 10.0)})
        limiter.acquire(GENERAL, T0)
        limiter.penalize(GENERAL, T0 + 3.0)
        assert limiter.ready_at(GENERAL, T0) == T0 + 10.0
        limiter.penalize(GENERAL, T0 + 12.0)
        assert limiter.ready_at(GENERAL, T0) == T0 + 12.0

    def test_penalty_applies_to_a_bucket_without_budget(self) -> None:
        limiter = RateLimiter({})
        limiter.penalize(HISTORY, T0 + 1.0)
        assert limiter.delay(HISTORY, T0) == 1.0

    def test_non_finite_until_is_refused(self) -> None:
        with pytest.raises(LocalProtocolError):
            RateLimiter().penalize(GENERAL, math.inf)


class TestClock:
    @pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
    def test_non_finite_now_is_refused(self, now: float) -> None:
        limiter = RateLimiter()
        with pytest.raises(LocalProtocolError, match="finite"):
            limiter.delay(GENERAL, now)
        with pytest.raises(LocalProtocolError, match="finite"):
            limiter.acquire(GENERAL, now)

    def test_backward_jump_keeps_the_remaining_wait(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(2, 10.0)})
        fill(limiter, GENERAL, 2, T0, 1.0)
        assert limiter.delay(GENERAL, T0 + 4.0) == 6.0
        # The clock is set back an hour: six seconds are still owed, not an hour and six.
        assert limiter.delay(GENERAL, T0 + 4.0 - 3600.0) == pytest.approx(6.0)
        assert limiter.delay(GENERAL, T0 + 10.0 - 3600.0) == 0.0

    def test_backward_jump_moves_penalties(self) -> None:
        limiter = RateLimiter()
        limiter.penalize(GENERAL, T0 + 30.0, now=T0)
        limiter.penalize(GENERAL, T0 - 100.0 + 30.0, now=T0 - 100.0)
        assert limiter.delay(GENERAL, T0 - 100.0) == pytest.approx(30.0)

    def test_small_backward_jump_never_gives_a_negative_delay(self) -> None:
        limiter = RateLimiter({GENERAL: RateBudget(1, 1.0)})
        limiter.acquire(GENERAL, T0)
        assert limiter.delay(GENERAL, T0 - 0.5) == pytest.approx(1.0)
        assert limiter.delay(GENERAL, T0 + 0.5) == 0.0


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 5),
    window=st.floats(0.5, 10.0),
    moves=st.lists(
        st.tuples(
            st.floats(-20.0, 20.0),
            st.sampled_from([GENERAL, HISTORY]),
            st.booleans(),
        ),
        max_size=60,
    ),
)
def test_never_crashes_and_never_exceeds_the_budget(
    limit: int, window: float, moves: list[tuple[float, RateBucket, bool]]
) -> None:
    limiter = RateLimiter({GENERAL: RateBudget(limit, window), HISTORY: RateBudget(limit, window)})
    now = T0
    sent: dict[RateBucket, list[float]] = {GENERAL: [], HISTORY: []}
    elapsed = 0.0  # real time, which only moves forward
    for step, bucket, penalize in moves:
        now += step
        elapsed += max(step, 0.0)
        wait = limiter.delay(bucket, now)
        assert 0.0 <= wait <= max(window, 1.0) + 1e-3
        if penalize:
            limiter.penalize(bucket, now + 1.0, now=now)
        elif wait == 0.0:
            limiter.acquire(bucket, now)
            sent[bucket].append(elapsed)
        else:
            with pytest.raises(LocalProtocolError):
                limiter.acquire(bucket, now)
        assert limiter.used(bucket, now) <= limit
    # Measured on a clock that never went back, no window ever held more than ``limit``.
    for times in sent.values():
        for index in range(limit, len(times)):
            assert times[index] - times[index - limit] >= window - 1e-4
