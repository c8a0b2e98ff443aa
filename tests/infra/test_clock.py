"""Business dates are Shanghai dates; the instants bounding them are stored and compared in UTC."""

from __future__ import annotations

from datetime import date, datetime, timezone

from infra import clock


def test_a_business_day_starts_at_shanghai_midnight_given_in_utc():
    start = clock.business_day_start(date(2026, 12, 1))
    assert start == datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)
    # UTC itself, not an equal instant with +08:00: SQLite compares the stored text.
    assert start.utcoffset().total_seconds() == 0 and start.isoformat().endswith("+00:00")


def test_just_after_shanghai_midnight_is_the_next_business_date():
    assert clock.business_date(datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc)) == date(2026, 12, 1)
    assert clock.business_date(datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc)) == date(2026, 11, 30)
