"""The trading day turns at 17:00 Chicago time, across daylight-saving changes and weekends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradeforge_proto.rules import CHICAGO, day_start, trading_day


def utc(*fields: int) -> datetime:
    year, month, day, hour, minute, *rest = fields
    return datetime(year, month, day, hour, minute, rest[0] if rest else 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        # Standard time (UTC-6): the turn is at 23:00 UTC.
        (utc(2026, 3, 5, 22, 59, 59), date(2026, 3, 5)),
        (utc(2026, 3, 5, 23, 0), date(2026, 3, 6)),
        # Daylight saving starts on Sunday 8 March 2026: the turn moves to 22:00 UTC.
        (utc(2026, 3, 8, 21, 59, 59), date(2026, 3, 9)),
        (utc(2026, 3, 9, 21, 59, 59), date(2026, 3, 9)),
        (utc(2026, 3, 9, 22, 0), date(2026, 3, 10)),
        # Daylight saving ends on Sunday 1 November 2026: back to 23:00 UTC.
        (utc(2026, 10, 29, 21, 59, 59), date(2026, 10, 29)),
        (utc(2026, 10, 29, 22, 0), date(2026, 10, 30)),
        (utc(2026, 11, 2, 22, 59, 59), date(2026, 11, 2)),
        (utc(2026, 11, 2, 23, 0), date(2026, 11, 3)),
        # The repeated hour of 1 November (01:00-02:00 Chicago happens twice) is Monday's day.
        (utc(2026, 11, 1, 6, 30), date(2026, 11, 2)),
        (utc(2026, 11, 1, 7, 30), date(2026, 11, 2)),
        # Friday's turn opens Monday's day; the weekend belongs to Monday.
        (utc(2026, 12, 4, 22, 59), date(2026, 12, 4)),
        (utc(2026, 12, 4, 23, 0), date(2026, 12, 7)),
        (utc(2026, 12, 5, 12, 0), date(2026, 12, 7)),
        (utc(2026, 12, 6, 23, 30), date(2026, 12, 7)),
    ],
)
def test_the_day_turns_at_five_in_chicago(moment: datetime, day: date) -> None:
    assert trading_day(moment) == day


def test_the_offset_of_the_timestamp_does_not_matter() -> None:
    tokyo = timezone(timedelta(hours=9))
    moment = datetime(2026, 3, 10, 7, 0, tzinfo=tokyo)  # 22:00 UTC on 9 March: 17:00 CDT
    assert trading_day(moment) == date(2026, 3, 10)
    assert trading_day(moment - timedelta(seconds=1)) == date(2026, 3, 9)


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        trading_day(datetime(2026, 3, 9, 17, 0))


def test_day_start_is_the_turn_before() -> None:
    assert day_start(date(2026, 3, 9)) == datetime(2026, 3, 6, 17, 0, tzinfo=CHICAGO)
    assert day_start(date(2026, 3, 10)) == datetime(2026, 3, 9, 17, 0, tzinfo=CHICAGO)
    assert day_start(date(2026, 3, 10)).astimezone(UTC) == utc(2026, 3, 9, 22, 0)
    assert day_start(date(2026, 11, 3)).astimezone(UTC) == utc(2026, 11, 2, 23, 0)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_a_weekday_begins_exactly_at_its_day_start(day: date) -> None:
    weekday = day + timedelta(days=-day.weekday() if day.weekday() >= 5 else 0)
    start = day_start(weekday)
    assert trading_day(start) == weekday
    assert trading_day(start - timedelta(microseconds=1)) < weekday
