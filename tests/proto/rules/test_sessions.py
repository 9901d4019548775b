"""CME Globex sessions and Topstep's flatten time, across halts, weekends, holidays and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeforge_proto.rules import CHICAGO, trading_day
from tradeforge_proto.rules.sessions import OUTSIDE_HOURS, Hours, TradingCalendar

NEW_YEAR = date(2026, 1, 1)
"""A Thursday."""
GOOD_FRIDAY = date(2026, 4, 3)
CHRISTMAS = date(2026, 12, 25)
"""A Friday."""
CME = TradingCalendar(Hours.CME, holidays=[NEW_YEAR, GOOD_FRIDAY, CHRISTMAS])
ALWAYS = TradingCalendar()
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def chi(*fields: int) -> datetime:
    """An aware Chicago wall-clock moment."""
    year, month, day, hour, minute, *rest = fields
    return datetime(year, month, day, hour, minute, rest[0] if rest else 0, tzinfo=CHICAGO)


def utc(*fields: int) -> datetime:
    year, month, day, hour, minute, *rest = fields
    return datetime(year, month, day, hour, minute, rest[0] if rest else 0, tzinfo=UTC)


# The week of Monday 7 December 2026 runs in standard time (UTC-6).
@pytest.mark.parametrize(
    ("moment", "day"),
    [
        # The week opens on Sunday at 17:00.
        (chi(2026, 12, 6, 16, 59, 59), None),
        (chi(2026, 12, 6, 17, 0), date(2026, 12, 7)),
        (chi(2026, 12, 7, 9, 30), date(2026, 12, 7)),
        # The daily halt, Monday to Thursday, from 16:00 to 17:00.
        (chi(2026, 12, 7, 15, 59, 59), date(2026, 12, 7)),
        (chi(2026, 12, 7, 16, 0), None),
        (chi(2026, 12, 7, 16, 59, 59), None),
        (chi(2026, 12, 7, 17, 0), date(2026, 12, 8)),
        (chi(2026, 12, 8, 16, 0), None),
        (chi(2026, 12, 8, 17, 0), date(2026, 12, 9)),
        (chi(2026, 12, 9, 16, 30), None),
        (chi(2026, 12, 9, 17, 0), date(2026, 12, 10)),
        (chi(2026, 12, 10, 16, 59), None),
        (chi(2026, 12, 10, 17, 0), date(2026, 12, 11)),
        (chi(2026, 12, 10, 23, 59, 59), date(2026, 12, 11)),
        (chi(2026, 12, 11, 0, 0), date(2026, 12, 11)),
        # The week closes on Friday at 16:00 and stays closed through Saturday.
        (chi(2026, 12, 11, 15, 59, 59), date(2026, 12, 11)),
        (chi(2026, 12, 11, 16, 0), None),
        (chi(2026, 12, 11, 17, 0), None),
        (chi(2026, 12, 12, 0, 0), None),
        (chi(2026, 12, 12, 12, 0), None),
        (chi(2026, 12, 13, 12, 0), None),
        # New Year's Day, a Thursday: Wednesday's session is whole, Thursday's is missing, and
        # Friday's opens on Thursday evening as usual.
        (chi(2025, 12, 30, 17, 0), date(2025, 12, 31)),
        (chi(2025, 12, 31, 15, 59, 59), date(2025, 12, 31)),
        (chi(2025, 12, 31, 17, 0), None),
        (chi(2026, 1, 1, 0, 0), None),
        (chi(2026, 1, 1, 15, 59, 59), None),
        (chi(2026, 1, 1, 16, 30), None),
        (chi(2026, 1, 1, 17, 0), date(2026, 1, 2)),
        # Good Friday and Christmas, both Fridays: closed from Thursday's halt to Sunday 17:00.
        (chi(2026, 4, 2, 15, 59), date(2026, 4, 2)),
        (chi(2026, 4, 2, 17, 0), None),
        (chi(2026, 4, 3, 10, 0), None),
        (chi(2026, 4, 5, 17, 0), date(2026, 4, 6)),
        (chi(2026, 12, 24, 15, 59), date(2026, 12, 24)),
        (chi(2026, 12, 24, 17, 0), None),
        (chi(2026, 12, 25, 12, 0), None),
        (chi(2026, 12, 27, 16, 59), None),
        (chi(2026, 12, 27, 17, 0), date(2026, 12, 28)),
    ],
)
def test_cme_sessions(moment: datetime, day: date | None) -> None:
    assert CME.session_day(moment) == day
    assert CME.is_open(moment) is (day is not None)


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        # Daylight saving starts on Sunday 8 March 2026: Friday closes at 22:00 UTC (CST) and
        # Sunday opens at 22:00 UTC (CDT).
        (utc(2026, 3, 6, 21, 59, 59), date(2026, 3, 6)),
        (utc(2026, 3, 6, 22, 0), None),
        (utc(2026, 3, 8, 8, 0), None),  # 03:00 CDT, just after the switch
        (utc(2026, 3, 8, 21, 59, 59), None),
        (utc(2026, 3, 8, 22, 0), date(2026, 3, 9)),
        (utc(2026, 3, 9, 20, 59, 59), date(2026, 3, 9)),
        (utc(2026, 3, 9, 21, 0), None),
        (utc(2026, 3, 9, 22, 0), date(2026, 3, 10)),
        # Daylight saving ends on Sunday 1 November 2026: Friday closes at 21:00 UTC (CDT) and
        # Sunday opens at 23:00 UTC (CST).
        (utc(2026, 10, 30, 20, 59, 59), date(2026, 10, 30)),
        (utc(2026, 10, 30, 21, 0), None),
        (utc(2026, 11, 1, 6, 30), None),  # the repeated hour, first time
        (utc(2026, 11, 1, 7, 30), None),  # and second time
        (utc(2026, 11, 1, 22, 59, 59), None),
        (utc(2026, 11, 1, 23, 0), date(2026, 11, 2)),
        (utc(2026, 11, 2, 21, 59, 59), date(2026, 11, 2)),
        (utc(2026, 11, 2, 22, 0), None),
        (utc(2026, 11, 2, 23, 0), date(2026, 11, 3)),
    ],
)
def test_cme_sessions_in_daylight_saving_weeks(moment: datetime, day: date | None) -> None:
    assert CME.session_day(moment) == day


def test_the_offset_of_the_moment_does_not_matter() -> None:
    tokyo = timezone(timedelta(hours=9))
    opening = datetime(2026, 12, 7, 8, 0, tzinfo=tokyo)  # Sunday 17:00 CST
    assert CME.is_open(opening)
    assert not CME.is_open(opening - SECOND)
    assert CME.next_open(opening - SECOND) == utc(2026, 12, 6, 23, 0)


@pytest.mark.parametrize(
    ("day", "opens", "closes"),
    [
        (date(2026, 12, 7), utc(2026, 12, 6, 23, 0), utc(2026, 12, 7, 22, 0)),
        (date(2026, 12, 11), utc(2026, 12, 10, 23, 0), utc(2026, 12, 11, 22, 0)),
        (date(2026, 3, 9), utc(2026, 3, 8, 22, 0), utc(2026, 3, 9, 21, 0)),
        (date(2026, 11, 2), utc(2026, 11, 1, 23, 0), utc(2026, 11, 2, 22, 0)),
        # The session of the Friday before each switch opens in the old offset.
        (date(2026, 3, 6), utc(2026, 3, 5, 23, 0), utc(2026, 3, 6, 22, 0)),
        (date(2026, 10, 30), utc(2026, 10, 29, 22, 0), utc(2026, 10, 30, 21, 0)),
    ],
)
def test_session_bounds(day: date, opens: datetime, closes: datetime) -> None:
    assert CME.session_open(day) == opens
    assert CME.session_close(day) == closes
    assert CME.session_open(day).tzinfo is UTC
    assert CME.session_close(day).tzinfo is UTC


@pytest.mark.parametrize("day", [date(2026, 12, 12), date(2026, 12, 13), CHRISTMAS, NEW_YEAR])
def test_a_day_without_a_session_has_no_bounds(day: date) -> None:
    assert not CME.has_session(day)
    for method in (CME.session_open, CME.session_close, CME.flatten_at):
        with pytest.raises(ValueError, match="no session on"):
            method(day)


def test_neighbours_of_a_holiday_keep_their_sessions() -> None:
    assert CME.has_session(date(2025, 12, 31))
    assert CME.has_session(date(2026, 1, 2))
    assert CME.session_open(date(2026, 1, 2)) == utc(2026, 1, 1, 23, 0)
    assert CME.session_close(date(2025, 12, 31)) == utc(2025, 12, 31, 22, 0)


@pytest.mark.parametrize(
    ("moment", "opens"),
    [
        # Open: the moment itself, in UTC.
        (chi(2026, 12, 9, 10, 0), utc(2026, 12, 9, 16, 0)),
        (chi(2026, 12, 6, 17, 0), utc(2026, 12, 6, 23, 0)),
        # The daily halt.
        (chi(2026, 12, 9, 16, 0), utc(2026, 12, 9, 23, 0)),
        (chi(2026, 12, 9, 16, 59, 59), utc(2026, 12, 9, 23, 0)),
        # The weekend.
        (chi(2026, 12, 11, 16, 0), utc(2026, 12, 13, 23, 0)),
        (chi(2026, 12, 12, 9, 0), utc(2026, 12, 13, 23, 0)),
        (chi(2026, 12, 13, 16, 59, 59), utc(2026, 12, 13, 23, 0)),
        # A holiday mid-week and one on a Friday.
        (chi(2025, 12, 31, 16, 0), utc(2026, 1, 1, 23, 0)),
        (chi(2026, 1, 1, 12, 0), utc(2026, 1, 1, 23, 0)),
        (chi(2026, 12, 24, 16, 0), utc(2026, 12, 27, 23, 0)),
        (chi(2026, 4, 2, 16, 30), utc(2026, 4, 5, 22, 0)),
        # Weekends over which daylight saving starts or ends.
        (chi(2026, 3, 6, 16, 0), utc(2026, 3, 8, 22, 0)),
        (chi(2026, 10, 30, 16, 0), utc(2026, 11, 1, 23, 0)),
    ],
)
def test_next_open(moment: datetime, opens: datetime) -> None:
    found = CME.next_open(moment)
    assert found == opens
    assert found.tzinfo is UTC


def test_next_open_gives_up_after_a_year_of_holidays() -> None:
    start = date(2026, 12, 11)
    closed = TradingCalendar(Hours.CME, holidays=(start + timedelta(days=n) for n in range(400)))
    with pytest.raises(ValueError, match="no session opens within 370 days"):
        closed.next_open(chi(2026, 12, 10, 16, 0))


@pytest.mark.parametrize(
    ("moment", "due"),
    [
        (chi(2026, 12, 9, 10, 0), None),
        (chi(2026, 12, 9, 15, 9, 59), None),
        (chi(2026, 12, 9, 15, 10), date(2026, 12, 9)),
        (chi(2026, 12, 9, 15, 59, 59), date(2026, 12, 9)),
        (chi(2026, 12, 9, 16, 0), None),
        (chi(2026, 12, 9, 17, 0), None),
        (chi(2026, 12, 11, 15, 10), date(2026, 12, 11)),
        (chi(2026, 12, 12, 15, 10), None),
        (chi(2026, 1, 1, 15, 10), None),
        # In daylight time 15:10 is 20:10 UTC.
        (utc(2026, 3, 9, 20, 9, 59), None),
        (utc(2026, 3, 9, 20, 10), date(2026, 3, 9)),
    ],
)
def test_flatten_window(moment: datetime, due: date | None) -> None:
    assert CME.flatten_due(moment) == due


def test_flatten_moments() -> None:
    assert CME.flatten_at(date(2026, 12, 9)) == utc(2026, 12, 9, 21, 10)
    assert CME.flatten_at(date(2026, 3, 9)) == utc(2026, 3, 9, 20, 10)
    never = TradingCalendar(Hours.CME, flatten_time=None)
    assert never.flatten_at(date(2026, 12, 9)) is None
    assert never.flatten_due(chi(2026, 12, 9, 15, 30)) is None
    early = TradingCalendar(Hours.CME, flatten_time=time(12, 0))
    assert early.flatten_due(chi(2026, 12, 9, 11, 59)) is None
    assert early.flatten_due(chi(2026, 12, 9, 12, 0)) == date(2026, 12, 9)


@pytest.mark.parametrize(
    "moment",
    [
        chi(2026, 12, 9, 16, 30),
        chi(2026, 12, 12, 12, 0),
        chi(2026, 12, 13, 16, 59),
        chi(2026, 12, 9, 15, 30),
        utc(2026, 11, 1, 6, 30),
    ],
)
def test_always_is_always_open_and_never_flattens(moment: datetime) -> None:
    calendar = TradingCalendar(holidays=[CHRISTMAS])
    assert calendar.is_open(moment)
    assert calendar.session_day(moment) == trading_day(moment)
    assert calendar.next_open(moment) == moment
    assert calendar.next_open(moment).tzinfo is UTC
    assert calendar.flatten_due(moment) is None
    assert calendar.overlaps(moment, moment + SECOND)


def test_always_sessions_are_whole_trading_days() -> None:
    assert ALWAYS.has_session(CHRISTMAS)
    assert not ALWAYS.has_session(date(2026, 12, 12))
    assert ALWAYS.session_open(date(2026, 12, 7)) == utc(2026, 12, 4, 23, 0)
    assert ALWAYS.session_close(date(2026, 12, 7)) == utc(2026, 12, 7, 23, 0)
    assert ALWAYS.session_open(date(2026, 12, 8)) == utc(2026, 12, 7, 23, 0)
    assert ALWAYS.flatten_at(date(2026, 12, 7)) is None
    assert ALWAYS.is_open(chi(2025, 12, 31, 17, 0))
    assert not ALWAYS.overlaps(chi(2026, 12, 9, 10, 0), chi(2026, 12, 9, 10, 0))


def test_other_opening_and_closing_times() -> None:
    calendar = TradingCalendar(
        Hours.CME, open_time=time(18, 0), close_time=time(17, 0), flatten_time=time(16, 45)
    )
    assert not calendar.is_open(chi(2026, 12, 6, 17, 59))
    assert calendar.session_day(chi(2026, 12, 6, 18, 0)) == date(2026, 12, 7)
    assert calendar.is_open(chi(2026, 12, 7, 16, 59))
    assert not calendar.is_open(chi(2026, 12, 7, 17, 0))
    assert calendar.flatten_due(chi(2026, 12, 7, 16, 45)) == date(2026, 12, 7)
    assert calendar.next_open(chi(2026, 12, 7, 17, 0)) == utc(2026, 12, 8, 0, 0)
    nonstop = TradingCalendar(Hours.CME, open_time=time(16, 0))
    assert nonstop.session_day(chi(2026, 12, 7, 16, 0)) == date(2026, 12, 8)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # Inside a session.
        (chi(2026, 12, 9, 9, 0), chi(2026, 12, 9, 10, 0), True),
        (chi(2026, 12, 9, 15, 59), chi(2026, 12, 9, 16, 0), True),
        (chi(2026, 12, 9, 17, 0), chi(2026, 12, 9, 17, 1), True),
        # Across the halt, or touching it from either side.
        (chi(2026, 12, 9, 15, 30), chi(2026, 12, 9, 17, 30), True),
        (chi(2026, 12, 9, 15, 59), chi(2026, 12, 9, 16, 30), True),
        (chi(2026, 12, 9, 16, 30), chi(2026, 12, 9, 17, 0, 1), True),
        # Wholly inside the halt: the end is excluded.
        (chi(2026, 12, 9, 16, 0), chi(2026, 12, 9, 17, 0), False),
        (chi(2026, 12, 9, 16, 10), chi(2026, 12, 9, 16, 50), False),
        # The weekend, and the weekend with a Friday holiday.
        (chi(2026, 12, 11, 16, 0), chi(2026, 12, 13, 17, 0), False),
        (chi(2026, 12, 11, 16, 0), chi(2026, 12, 13, 17, 1), True),
        (chi(2026, 12, 24, 16, 0), chi(2026, 12, 27, 17, 0), False),
        (chi(2026, 12, 24, 15, 0), chi(2026, 12, 27, 17, 0), True),
        # A whole week.
        (chi(2026, 12, 5, 0, 0), chi(2026, 12, 12, 0, 0), True),
        # Empty spans overlap nothing.
        (chi(2026, 12, 9, 10, 0), chi(2026, 12, 9, 10, 0), False),
    ],
)
def test_overlaps(start: datetime, end: datetime, expected: bool) -> None:
    assert CME.overlaps(start, end) is expected


@pytest.mark.parametrize("calendar", [CME, ALWAYS])
def test_a_backward_span_is_refused(calendar: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="is before start"):
        calendar.overlaps(chi(2026, 12, 9, 10, 0), chi(2026, 12, 9, 9, 0))


@pytest.mark.parametrize("calendar", [CME, ALWAYS])
def test_a_naive_moment_is_refused(calendar: TradingCalendar) -> None:
    naive = datetime(2026, 12, 9, 10, 0)
    aware = chi(2026, 12, 9, 10, 0)
    for call in (calendar.is_open, calendar.session_day, calendar.next_open, calendar.flatten_due):
        with pytest.raises(ValueError, match="now must be timezone-aware"):
            call(naive)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        calendar.overlaps(naive, aware)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        calendar.overlaps(aware, naive)


def test_holidays_become_a_frozenset() -> None:
    calendar = TradingCalendar(Hours.CME, holidays=[CHRISTMAS, CHRISTMAS, NEW_YEAR])
    assert calendar.holidays == frozenset({CHRISTMAS, NEW_YEAR})
    assert TradingCalendar().holidays == frozenset()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"flatten_time": time(16, 0)}, "flatten_time 16:00:00 must be before close_time"),
        ({"flatten_time": time(16, 30)}, "must be before close_time"),
        ({"close_time": time(17, 30)}, "close_time 17:30:00 is after open_time"),
        ({"holidays": [datetime(2026, 12, 25, tzinfo=UTC)]}, "holidays must hold dates"),
        ({"holidays": ["2026-12-25"]}, "holidays must hold dates"),
        ({"open_time": time(17, 0, tzinfo=UTC)}, "open_time must be a time without a zone"),
        ({"flatten_time": "15:10"}, "flatten_time must be a time without a zone"),
    ],
)
def test_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TradingCalendar(Hours.CME, **fields)  # type: ignore[arg-type]


def test_the_rejection_message() -> None:
    assert OUTSIDE_HOURS == "Outside of trading hours."


# Properties, sampled at minute resolution (every boundary falls on a whole minute) over a year
# and a bit that holds both daylight-saving switches and the holidays above.
BASE = utc(2025, 12, 20, 0, 0)
SPAN_MINUTES = 400 * 24 * 60
minutes_st = st.integers(min_value=0, max_value=SPAN_MINUTES)
FAST = settings(max_examples=60, deadline=None)


def at(minutes: int) -> datetime:
    return BASE + minutes * MINUTE


def wall_clock_open(moment: datetime) -> bool:
    """The schedule read off the Chicago wall clock, independently of the calendar's sums."""
    local = moment.astimezone(CHICAGO)
    today, now = local.date(), local.time()
    tomorrow = today + timedelta(days=1)
    if now >= time(17, 0):
        return tomorrow.weekday() < 5 and tomorrow not in CME.holidays
    if now < time(16, 0):
        return today.weekday() < 5 and today not in CME.holidays
    return False


@FAST
@given(minutes_st)
def test_the_calendar_agrees_with_the_wall_clock(minutes: int) -> None:
    moment = at(minutes)
    assert CME.is_open(moment) is wall_clock_open(moment)
    day = CME.session_day(moment)
    if day is not None:
        assert day == trading_day(moment)
        assert CME.session_open(day) <= moment < CME.session_close(day)


@FAST
@given(minutes_st)
def test_next_open_is_the_first_open_minute(minutes: int) -> None:
    moment = at(minutes)
    found = CME.next_open(moment)
    assert found >= moment
    assert CME.is_open(found)
    probe = moment
    while probe < found:
        assert not CME.is_open(probe)
        probe += MINUTE


@FAST
@given(minutes_st, st.integers(min_value=0, max_value=3 * 24 * 60))
def test_overlaps_is_any_open_minute(minutes: int, length: int) -> None:
    start = at(minutes)
    end = start + length * MINUTE
    expected = any(CME.is_open(start + n * MINUTE) for n in range(length))
    assert CME.overlaps(start, end) is expected
