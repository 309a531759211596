"""Policy before every send: consent, quiet hours, frequency caps.

Pure functions of the member, the notification and what was sent already, so a
newcomer finds each rule by its name and the tests need no clock tricks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.program.config import Notifications

# Which consent each kind needs. Location nudges have their own opt-in; everything
# else is marketing and needs pushMarketing.
CONSENT = {
    "EXPIRY": "push_marketing",
    "BIRTHDAY": "push_marketing",
    "CAMPAIGN": "push_marketing",
    "LOCATION": "location_nudges",
}


@dataclass(frozen=True)
class Decision:
    action: str  # SEND | DEFER | SUPPRESS
    reason: str | None = None
    until: datetime | None = None


SEND = Decision("SEND")


def in_quiet_hours(rules: Notifications, local: time) -> bool:
    start, end = rules.quiet_hours.start, rules.quiet_hours.end
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # spans midnight, e.g. 21:00-09:00


def quiet_hours_end(rules: Notifications, now: datetime, zone: ZoneInfo) -> datetime:
    """The next moment the quiet hours are over, member-local."""
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), rules.quiet_hours.end, tzinfo=zone)
    if end <= local:
        end += timedelta(days=1)
    return end


def decide(
    rules: Notifications,
    *,
    kind: str,
    consents: dict[str, bool],
    zone: ZoneInfo,
    now: datetime,
    sent_today: int,
    sent_this_week: int,
    has_devices: bool,
) -> Decision:
    if not consents.get(CONSENT[kind], False):
        return Decision("SUPPRESS", f"NO_CONSENT: {CONSENT[kind]} is off")
    if not has_devices:
        return Decision("SUPPRESS", "NO_DEVICE: no registered device")
    if in_quiet_hours(rules, now.astimezone(zone).time()):
        return Decision("DEFER", "QUIET_HOURS", quiet_hours_end(rules, now, zone))
    if sent_today >= rules.max_per_day:
        return Decision("SUPPRESS", f"DAILY_CAP: {rules.max_per_day} already sent today")
    if sent_this_week >= rules.max_per_week:
        return Decision("SUPPRESS", f"WEEKLY_CAP: {rules.max_per_week} already sent in 7 days")
    return SEND
