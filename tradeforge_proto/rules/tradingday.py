"""The trading day: it turns at 17:00 America/Chicago, and a weekend belongs to the Monday after.

CME Globex futures, and the firm's daily figures, run from 17:00 Chicago time to 17:00 the next
day; the evening of Sunday opens Monday's day. Exchange holidays are not modelled: a holiday is a
day without fills, so its figures stay at zero.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

CHICAGO: Final = ZoneInfo("America/Chicago")
"""The exchange's time zone, with its daylight-saving changes."""
DAY_TURN: Final = time(17, 0)
"""Chicago wall-clock time at which one trading day ends and the next begins."""
_SATURDAY: Final = 5


def trading_day(timestamp: datetime) -> date:
    """The trading day a moment belongs to; ``timestamp`` must be timezone-aware."""
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError(f"timestamp must be timezone-aware, got {timestamp!r}")
    local = timestamp.astimezone(CHICAGO)
    day = local.date()
    if local.time() >= DAY_TURN:
        day += timedelta(days=1)
    weekday = day.weekday()
    if weekday >= _SATURDAY:
        day += timedelta(days=7 - weekday)
    return day


def day_start(day: date) -> datetime:
    """The aware moment (in Chicago time) at which a trading day begins: 17:00 the evening before.

    A Monday begins on the Friday evening, since the weekend belongs to it; any other day on the
    calendar day before it.
    """
    back = 3 if day.weekday() == 0 else 1
    return datetime.combine(day - timedelta(days=back), DAY_TURN, tzinfo=CHICAGO)
