"""Policy before every send: consent, quiet hours, frequency caps.

Pure functions of the member, the notification and what was sent already, so a
newcomer finds each rule by its name and the tests need no clock tricks: the
dispatcher loads the facts (`Member`, a nudge's re-check), `decide` only reads them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.program.config import Notifications

# Which consent each kind needs. Location nudges have their own opt-in; the marketing
# kinds need pushMarketing. None: a transactional push, the direct consequence of the
# member's own action (DRAW_WON: a prize they entered for). It needs no marketing
# consent, is not held to the marketing caps and does not count toward them; it still
# needs a registered device (signing out, or the phone's own switch that makes FCM drop
# the token, is how a member turns every push off: the program keeps no other opt-out),
# and quiet hours still defer it.
CONSENT: dict[str, str | None] = {
    "EXPIRY": "push_marketing",
    "BIRTHDAY": "push_marketing",
    "CAMPAIGN": "push_marketing",
    "JOURNEY": "push_marketing",
    "LOCATION": "location_nudges",
    "DRAW_WON": None,
    "CAMPAIGN_TEST": "push_marketing",
}
# Transactional pushes (consent None above): claimed before every marketing kind,
# whatever the program's priority says.
TRANSACTIONAL = tuple(kind for kind, consent in CONSENT.items() if consent is None)
# Sent because a marketer asked, to one named device, to see a campaign before it goes
# out (sendCampaignTest): waiting for the morning or giving way to a cap would defeat the
# point, and it is not the program talking to the member, so it goes out at once, outside
# the quiet hours and the caps, and counts toward neither. Consent still applies: it is
# marketing text on a member's phone.
EXPLICIT = ("CAMPAIGN_TEST",)
# Outside the caps, not counted toward them, and first in every claim.
UNCAPPED = (*EXPLICIT, *TRANSACTIONAL)


@dataclass(frozen=True)
class Decision:
    action: str  # SEND | DEFER | SUPPRESS
    reason: str | None = None
    until: datetime | None = None


SEND = Decision("SEND")


@dataclass(frozen=True)
class Member:
    """What the policy knows of a recipient: consents, devices, and what was sent to
    them already (today in their own time zone, and in the last 7 days)."""

    zone: ZoneInfo
    consents: Mapping[str, bool]
    has_devices: bool
    sent_today: int = 0
    sent_this_week: int = 0

    def counted(self) -> Member:
        """After one more send: the rest of a batch sees the caps. (Not `dataclasses.replace`:
        this runs once per push, and replace costs twice as much.)"""
        return Member(self.zone, self.consents, self.has_devices, self.sent_today + 1, self.sent_this_week + 1)

    def on_devices(self, has_devices: bool) -> Member:
        """For a notification to one named device: whether that device is there."""
        return Member(self.zone, self.consents, has_devices, self.sent_today, self.sent_this_week)


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


def decide(rules: Notifications, kind: str, member: Member, now: datetime, *, stale: str | None = None) -> Decision:
    """Send, defer (until when) or suppress (why). `stale` is the notification's own
    re-check ("still relevant?"), asked last: the general rules speak first."""
    consent = CONSENT[kind]
    if consent is not None and not member.consents.get(consent, False):
        return Decision("SUPPRESS", f"NO_CONSENT: {consent} is off")
    if not member.has_devices:
        return Decision("SUPPRESS", "NO_DEVICE: no registered device")
    if kind in EXPLICIT:
        return SEND
    if in_quiet_hours(rules, now.astimezone(member.zone).time()):
        return Decision("DEFER", "QUIET_HOURS", quiet_hours_end(rules, now, member.zone))
    if consent is None:  # transactional: the caps are marketing's budget
        return Decision("SUPPRESS", stale) if stale else SEND
    if member.sent_today >= rules.max_per_day:
        return Decision("SUPPRESS", f"DAILY_CAP: {rules.max_per_day} already sent today")
    if member.sent_this_week >= rules.max_per_week:
        return Decision("SUPPRESS", f"WEEKLY_CAP: {rules.max_per_week} already sent in 7 days")
    if stale:
        return Decision("SUPPRESS", stale)
    return SEND
