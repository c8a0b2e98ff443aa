"""Time, the bank's way: timestamps are timezone-aware UTC; business dates are Asia/Shanghai dates.

Due dates, daily jobs and "today" are the bank's calendar day in China, whatever the server's zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    return datetime.now(timezone.utc)


def business_date(at: datetime | None = None) -> date:
    """The bank's calendar date at ``at`` (default: now)."""
    at = at or now()
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no business date: give it a time zone")
    return at.astimezone(BUSINESS_TZ).date()


def business_day_start(day: date) -> datetime:
    """Midnight at the start of a business date, as a UTC instant. Always UTC: SQLite compares
    stored times as text, so the same instant written with +08:00 would sort wrongly."""
    return datetime.combine(day, time(0), tzinfo=BUSINESS_TZ).astimezone(timezone.utc)
