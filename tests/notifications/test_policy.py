"""The dispatcher's choices without I/O: `policy.decide` for one notification, and the
batch steps around it (caps within a batch, FCM's answers). Plain values in, the
decision out: no database, no clock, no server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.program.config import load
from notifications import dispatch, policy
from notifications.push import Outcome
from notifications.recheck import Queued

RULES = load(None).notifications  # the demo program: quiet 21:00-09:00, 2 a day, 5 a week
UTC_ZONE = ZoneInfo("UTC")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")  # UTC+14, the farthest ahead
NOON_UTC = datetime(2031, 3, 12, 12, 0, tzinfo=UTC)
BOTH = {"push_marketing": True, "location_nudges": True}


def member(zone=UTC_ZONE, consents=BOTH, devices=True, today=0, week=0) -> policy.Member:
    return policy.Member(zone=zone, consents=consents, has_devices=devices, sent_today=today, sent_this_week=week)


def decide(kind="EXPIRY", m=None, now=NOON_UTC, stale=None) -> policy.Decision:
    return policy.decide(RULES, kind, m or member(), now, stale=stale)


def test_each_kind_needs_its_own_consent():
    marketing_only = {"push_marketing": True, "location_nudges": False}
    location_only = {"push_marketing": False, "location_nudges": True}
    assert decide("BIRTHDAY", member(consents=marketing_only)) == policy.SEND
    assert decide("LOCATION", member(consents=marketing_only)) == policy.Decision(
        "SUPPRESS", "NO_CONSENT: location_nudges is off"
    )
    assert decide("LOCATION", member(consents=location_only)) == policy.SEND
    for kind in ("EXPIRY", "BIRTHDAY", "CAMPAIGN"):
        assert decide(kind, member(consents=location_only)) == policy.Decision(
            "SUPPRESS", "NO_CONSENT: push_marketing is off"
        )
    assert decide(m=member(devices=False)) == policy.Decision("SUPPRESS", "NO_DEVICE: no registered device")


def test_quiet_hours_are_the_members_own_in_a_far_zone():
    # 08:00 UTC is 22:00 on Kiritimati: quiet there until 09:00 local, 19:00 UTC the same day
    morning = datetime(2031, 3, 12, 8, 0, tzinfo=UTC)
    deferred = decide(m=member(zone=KIRITIMATI), now=morning)
    assert deferred == policy.Decision("DEFER", "QUIET_HOURS", datetime(2031, 3, 13, 9, 0, tzinfo=KIRITIMATI))
    assert deferred.until == datetime(2031, 3, 12, 19, 0, tzinfo=UTC)
    # 20:59 local is still allowed, 21:00 is quiet; 09:00 local sends again
    assert decide(m=member(zone=KIRITIMATI), now=datetime(2031, 3, 12, 6, 59, tzinfo=UTC)) == policy.SEND
    assert decide(m=member(zone=KIRITIMATI), now=datetime(2031, 3, 12, 7, 0, tzinfo=UTC)).action == "DEFER"
    assert decide(m=member(zone=KIRITIMATI), now=deferred.until) == policy.SEND
    # the same instant is 08:00 in UTC, before 09:00: deferred to 09:00 UTC
    assert decide(now=morning) == policy.Decision("DEFER", "QUIET_HOURS", datetime(2031, 3, 12, 9, 0, tzinfo=UTC))


def test_daily_and_weekly_caps_at_their_boundaries():
    assert decide(m=member(today=RULES.max_per_day - 1, week=RULES.max_per_day - 1)) == policy.SEND
    assert decide(m=member(today=RULES.max_per_day, week=RULES.max_per_day)) == policy.Decision(
        "SUPPRESS", "DAILY_CAP: 2 already sent today"
    )
    assert decide(m=member(today=0, week=RULES.max_per_week - 1)) == policy.SEND
    assert decide(m=member(today=0, week=RULES.max_per_week)) == policy.Decision(
        "SUPPRESS", "WEEKLY_CAP: 5 already sent in 7 days"
    )


def test_the_recheck_speaks_last():
    spent = "NOTHING_TO_EXPIRE: the points were spent"
    assert decide(stale=spent) == policy.Decision("SUPPRESS", spent)
    # consent, quiet hours and caps answer first: a deferred one is checked again when it is due
    assert decide(m=member(consents={}), stale=spent).reason == "NO_CONSENT: push_marketing is off"
    assert decide(now=NOON_UTC - timedelta(hours=4), stale=spent).action == "DEFER"
    assert decide(m=member(today=2, week=2), stale=spent).reason.startswith("DAILY_CAP")


def queued(member_id: uuid.UUID, kind: str = "EXPIRY", attempts: int = 1) -> Queued:
    return Queued(uuid.uuid4(), member_id, kind, "title", "body", {}, attempts, NOON_UTC)


def test_a_batch_counts_its_own_sends_against_the_caps():
    one, two, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [queued(one), queued(two), queued(gone), queued(one, "BIRTHDAY"), queued(one, "CAMPAIGN")]
    stale = {batch[1].id: "NOTHING_TO_EXPIRE: the points were spent"}
    loaded = dispatch.Loaded(batch, {one: member(today=0), two: member(today=1)}, {}, stale)
    decided = dispatch.decide(RULES, loaded, NOON_UTC)
    assert [(n.member_id, n.kind, d.action, d.reason) for n, d in decided] == [
        (one, "EXPIRY", "SEND", None),
        (two, "EXPIRY", "SUPPRESS", "NOTHING_TO_EXPIRE: the points were spent"),  # and not counted
        (one, "BIRTHDAY", "SEND", None),
        (one, "CAMPAIGN", "SUPPRESS", "DAILY_CAP: 2 already sent today"),
    ]  # the member who is gone is left out: the claim lapses
    assert loaded.members[one].sent_today == 0  # what was loaded stays as read


def test_fcm_answers_make_sent_retried_or_failed():
    n = queued(uuid.uuid4(), attempts=3)
    sent = dispatch.answered(
        n, [Outcome(ok=False, code="UNREGISTERED", prune=True), Outcome(ok=True, message_id="m")], NOON_UTC
    )
    assert (sent.state, sent.message_id, sent.sent_at) == ("SENT", "m", NOON_UTC)
    retry = dispatch.answered(n, [Outcome(ok=False, code="QUOTA_EXCEEDED", retry_after=60.0)], NOON_UTC)
    assert (retry.state, retry.reason, retry.due_at) == (
        "QUEUED",
        "RETRY: QUOTA_EXCEEDED",
        NOON_UTC + timedelta(seconds=60),
    )
    # a short Retry-After still backs off 2^attempts
    late = dispatch.answered(
        queued(n.member_id, attempts=7), [Outcome(ok=False, code="UNAVAILABLE", retry_after=5.0)], NOON_UTC
    )
    assert late.due_at == NOON_UTC + timedelta(seconds=128)
    last = dispatch.answered(
        queued(n.member_id, attempts=dispatch.MAX_ATTEMPTS),
        [Outcome(ok=False, code="UNAVAILABLE", retry_after=5.0)],
        NOON_UTC,
    )
    assert (last.state, last.reason) == ("FAILED", "FCM: UNAVAILABLE")
