"""When credited points expire, from the program's expiry policy."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from domain.program.config import ExpiryPolicy, Program


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def expires_at(program: Program, earned_at: datetime) -> datetime | None:
    """The first moment the points are gone, at midnight in the program's time zone,
    so that everything earned on one day expires together.

    rolling N months: the day after the same date N months later;
    end_of_quarter / end_of_year: the end of the quarter / year that date falls in."""
    policy = program.expiry
    if policy.policy is ExpiryPolicy.NEVER:
        return None
    zone = program.zone
    local = earned_at.astimezone(zone).date()
    year, month = _add_months(local.year, local.month, policy.months or 0)
    if policy.policy is ExpiryPolicy.ROLLING:
        last_day = _days_in_month(year, month)
        day = min(local.day, last_day)
        end = datetime(year, month, day, tzinfo=zone).date() + timedelta(days=1)
    elif policy.policy is ExpiryPolicy.END_OF_QUARTER:
        quarter_end_month = ((month - 1) // 3 + 1) * 3
        year, month = _add_months(year, quarter_end_month, 1)
        end = datetime(year, month, 1).date()
    else:  # END_OF_YEAR
        end = datetime(year + 1, 1, 1).date()
    return datetime.combine(end, time(0), tzinfo=zone)


def _days_in_month(year: int, month: int) -> int:
    ny, nm = _add_months(year, month, 1)
    return (datetime(ny, nm, 1) - timedelta(days=1)).day
