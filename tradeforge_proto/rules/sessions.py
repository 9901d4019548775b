"""When the market is open: the CME Globex equity-index schedule and Topstep's flatten time.

A CME session belongs to a trading day D (Monday to Friday, numbered as ``trading_day`` does):
it opens at 17:00 Chicago time on the calendar day before D and closes at 16:00 on D, so the
week runs from Sunday 17:00 to Friday 16:00 with an hour's halt each weekday evening. A holiday
has no session at all. Times are passed in as aware datetimes; moments come back in UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import attrs

from .tradingday import CHICAGO, DAY_TURN, day_start, trading_day

OUTSIDE_HOURS: Final = "Outside of trading hours."
"""The gateway's rejection message for an order placed while the market is closed."""
_SATURDAY: Final = 5
_SEARCH_DAYS: Final = 370
"""How many calendar days ``next_open`` looks ahead before giving up."""
_DAY: Final = timedelta(days=1)


class Hours(enum.Enum):
    """Which schedule a calendar follows."""

    ALWAYS = "always"
    """Open every second, weekends included, and never flattening: for demos and tests."""
    CME = "cme"


def _aware(name: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment


def _dates(values: Iterable[date]) -> frozenset[date]:
    return frozenset(values)


def _only_dates(_: object, attribute: attrs.Attribute[Any], value: frozenset[date]) -> None:
    for day in value:
        if not isinstance(day, date) or isinstance(day, datetime):
            raise ValueError(f"{attribute.name} must hold dates, got {day!r}")


def _wall_time(_: object, attribute: attrs.Attribute[Any], value: time | None) -> None:
    if value is not None and not (isinstance(value, time) and value.tzinfo is None):
        raise ValueError(f"{attribute.name} must be a time without a zone, got {value!r}")


def _close_before_open(
    instance: TradingCalendar, attribute: attrs.Attribute[Any], value: time
) -> None:
    if value > instance.open_time:
        raise ValueError(
            f"{attribute.name} {value} is after open_time {instance.open_time}: sessions overlap"
        )


def _flatten_before_close(
    instance: TradingCalendar, attribute: attrs.Attribute[Any], value: time | None
) -> None:
    if value is not None and value >= instance.close_time:
        raise ValueError(
            f"{attribute.name} {value} must be before close_time {instance.close_time}"
        )


def _utc(day: date, wall: time) -> datetime:
    return datetime.combine(day, wall, tzinfo=CHICAGO).astimezone(UTC)


@attrs.frozen
class TradingCalendar:
    """The sessions of a market and the moment positions must be flat, by Chicago wall clock.

    ``holidays``, the open, close and flatten times shape the CME hours only. Under ALWAYS a
    trading day's session is the whole trading day, from one 17:00 turn to the next.
    """

    hours: Hours = Hours.ALWAYS
    holidays: frozenset[date] = attrs.field(
        default=frozenset(), converter=_dates, validator=_only_dates
    )
    """Trading days, as ``trading_day`` numbers them, without a session."""
    open_time: time = attrs.field(default=time(17, 0), validator=_wall_time)
    """Opening time on the calendar day before the trading day."""
    close_time: time = attrs.field(default=time(16, 0), validator=[_wall_time, _close_before_open])
    flatten_time: time | None = attrs.field(
        default=time(15, 10), validator=[_wall_time, _flatten_before_close]
    )
    """Positions must be flat from this time until the close (Topstep: 15:10); None for never."""

    def has_session(self, day: date) -> bool:
        """True when ``day`` is a weekday and, for CME hours, not a holiday."""
        if day.weekday() >= _SATURDAY:
            return False
        return self.hours is Hours.ALWAYS or day not in self.holidays

    def _require(self, day: date) -> None:
        if not self.has_session(day):
            raise ValueError(f"no session on {day}")

    def session_open(self, day: date) -> datetime:
        """The moment the session of trading day ``day`` opens; ValueError when it has none."""
        self._require(day)
        if self.hours is Hours.ALWAYS:
            return day_start(day).astimezone(UTC)
        return _utc(day - _DAY, self.open_time)

    def session_close(self, day: date) -> datetime:
        """The moment the session of trading day ``day`` closes; ValueError when it has none."""
        self._require(day)
        if self.hours is Hours.ALWAYS:
            return _utc(day, DAY_TURN)
        return _utc(day, self.close_time)

    def flatten_at(self, day: date) -> datetime | None:
        """The moment positions must be flat on trading day ``day``; None when never.

        ValueError when the day has no session.
        """
        self._require(day)
        if self.hours is Hours.ALWAYS or self.flatten_time is None:
            return None
        return _utc(day, self.flatten_time)

    def session_day(self, now: datetime) -> date | None:
        """The trading day whose session contains ``now``; None when the market is closed."""
        _aware("now", now)
        if self.hours is Hours.ALWAYS:
            return trading_day(now)
        # A session spans the evening before its day and the day itself.
        local = now.astimezone(CHICAGO).date()
        for day in (local, local + _DAY):
            if self.has_session(day) and self.session_open(day) <= now < self.session_close(day):
                return day
        return None

    def is_open(self, now: datetime) -> bool:
        """True when ``now`` falls inside a session."""
        return self.session_day(now) is not None

    def next_open(self, now: datetime) -> datetime:
        """``now`` (in UTC) when the market is open, else the moment the next session opens.

        ValueError when no session opens within a year or so, holidays filling it.
        """
        if self.is_open(now):
            return now.astimezone(UTC)
        day = now.astimezone(CHICAGO).date()
        for _ in range(_SEARCH_DAYS):
            if self.has_session(day):
                opens = self.session_open(day)
                if opens > now:
                    return opens
            day += _DAY
        raise ValueError(f"no session opens within {_SEARCH_DAYS} days of {now}")

    def flatten_due(self, now: datetime) -> date | None:
        """The trading day whose flatten window (flatten time to close) holds ``now``, if any."""
        day = self.session_day(now)
        if day is None:
            return None
        flatten = self.flatten_at(day)
        if flatten is None or now < flatten:
            return None
        return day

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when some part of the span [start, end) lies inside a session.

        A history bar that does not overlap any session was never traded; an empty span overlaps
        nothing. ValueError when ``end`` is before ``start``.
        """
        _aware("start", start)
        _aware("end", end)
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        if start == end:
            return False
        if self.hours is Hours.ALWAYS:
            return True
        day = start.astimezone(CHICAGO).date()
        last = end.astimezone(CHICAGO).date() + _DAY
        while day <= last:
            if (
                self.has_session(day)
                and self.session_open(day) < end
                and start < self.session_close(day)
            ):
                return True
            day += _DAY
        return False
