"""Birthday and expiry nudges, the send policy and FCM's answers, through the real
firebase-admin client against a local fake FCM, with the clock moved."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from tortoise import connections

from domain import clock
from domain.notifications import service as notifications
from domain.purchases import service as purchases
from domain.rewards import service as rewards
from domain.wallets import service as wallets
from notifications.dispatch import claim, dispatch_due
from notifications.nudges.birthday import queue_birthdays
from notifications.nudges.expiry import queue_expiry_warnings
from tests.notifications.conftest import PROGRAM, at, member, states


async def balance(member_id) -> int:
    rows = await connections.get("default").execute_query_dict(
        "SELECT balance FROM wallets WHERE member_id = $1 AND kind = 'POINTS'", [member_id]
    )
    return int(rows[0]["balance"])


async def test_birthday_in_tokyo_arrives_once_at_nine_tokyo_time(fcm, sender):
    tokyo = ZoneInfo("Asia/Tokyo")
    at(datetime(2030, 5, 17, 0, 30, tzinfo=tokyo))  # just after midnight on the birthday, in Tokyo
    kenji = await member("kenji@example.com", tz="Asia/Tokyo", birthday=date(1990, 5, 17), token="token-kenji-1")
    shy = await member("shy@example.com", tz="Asia/Tokyo", birthday=date(1991, 5, 17), push=False)
    before = await balance(kenji)

    for _ in range(3):  # the hourly job, run three times
        await queue_birthdays(PROGRAM)
    assert await balance(kenji) == before + 200  # the bonus, once

    at(datetime(2030, 5, 17, 8, 59, tzinfo=tokyo))
    assert (await dispatch_due(PROGRAM, sender)).sent == 0
    assert fcm.to("token-kenji-1") == []

    at(datetime(2030, 5, 17, 9, 0, tzinfo=tokyo))
    result = await dispatch_due(PROGRAM, sender)
    assert result.sent == 1
    (push,) = fcm.to("token-kenji-1")
    assert push["notification"]["title"].startswith("Happy birthday")
    assert "200 points" in push["notification"]["body"]
    assert await states(kenji) == [("BIRTHDAY", "SENT", None)]
    # the member who said no: the bonus all the same, no push, the reason recorded
    assert await states(shy) == [("BIRTHDAY", "SUPPRESSED", "NO_CONSENT: push_marketing is off")]
    assert len(fcm.delivered) == 1

    at(datetime(2030, 5, 17, 15, 0, tzinfo=tokyo))  # later runs that day change nothing
    await queue_birthdays(PROGRAM)
    assert (await dispatch_due(PROGRAM, sender)).sent == 0
    assert len(fcm.delivered) == 1


async def test_expiry_warning_carries_amount_and_date_and_none_once_spent(fcm, sender):
    at(datetime(2030, 1, 10, 12, tzinfo=UTC))
    ana = await member("ana@example.com", token="token-ana-1")
    bo = await member("bo@example.com", token="token-bo-1")
    await rewards.create(PROGRAM, name="Espresso", points_cost=80)
    # the welcome bonus (100 points) expires at the start of 11 January 2031, Paris time
    at(datetime(2031, 1, 4, 12, tzinfo=UTC))  # 7 days before
    assert await queue_expiry_warnings(PROGRAM) == 2
    assert await queue_expiry_warnings(PROGRAM) == 0  # once per date and warning
    await wallets.adjust(PROGRAM, member_id=bo, points=-100, reason="spent", idempotency_key="bo-spend", by="t")

    result = await dispatch_due(PROGRAM, sender)
    assert result.sent == 1
    (push,) = fcm.to("token-ana-1")
    assert push["notification"]["body"] == "100 points expire after 10 January. They still buy Espresso."
    assert push["data"]["amount"] == "100" and push["data"]["lastDay"] == "2031-01-10"
    assert fcm.to("token-bo-1") == []
    assert await states(ana) == [("EXPIRY", "SENT", None)]
    assert await states(bo) == [
        ("EXPIRY", "SUPPRESSED", "NOTHING_TO_EXPIRE: the points were spent or now expire later")
    ]


async def test_quiet_hours_defer_to_the_morning(fcm, sender):
    paris = ZoneInfo("Europe/Paris")
    at(datetime(2030, 3, 1, 23, 0, tzinfo=paris))
    lea = await member("lea@example.com", tz="Europe/Paris", token="token-lea-1")
    await notifications.enqueue(lea, kind="CAMPAIGN", title="Hi", body="Late", dedupe_key="late-1", due_at=clock.now())
    result = await dispatch_due(PROGRAM, sender)
    assert (result.sent, result.deferred) == (0, 1)
    rows = await connections.get("default").execute_query_dict(
        "SELECT state, due_at FROM notifications WHERE member_id = $1", [lea]
    )
    assert rows[0]["state"] == "QUEUED"
    assert rows[0]["due_at"] == datetime(2030, 3, 2, 9, 0, tzinfo=paris)  # deferred, not dropped
    at(datetime(2030, 3, 2, 9, 1, tzinfo=paris))
    assert (await dispatch_due(PROGRAM, sender)).sent == 1
    assert len(fcm.to("token-lea-1")) == 1


async def test_daily_cap_suppresses_with_the_reason_and_priority_decides(fcm, sender):
    at(datetime(2030, 3, 1, 12, 0, tzinfo=UTC))
    mo = await member("mo@example.com", token="token-mo-1", location=True)
    now = clock.now()
    for i, kind in enumerate(["CAMPAIGN", "LOCATION", "BIRTHDAY"]):  # queued lowest priority first
        await notifications.enqueue(mo, kind=kind, title=kind, body=str(i), dedupe_key=f"cap-{i}", due_at=now)
    result = await dispatch_due(PROGRAM, sender)
    assert (result.sent, result.suppressed) == (2, 1)
    assert sorted(await states(mo)) == [
        ("BIRTHDAY", "SENT", None),
        ("CAMPAIGN", "SUPPRESSED", "DAILY_CAP: 2 already sent today"),  # the lowest priority loses
        ("LOCATION", "SENT", None),
    ]
    # sent in one concurrent batch: they may arrive in either order
    assert sorted(m["notification"]["title"] for m in fcm.to("token-mo-1")) == ["BIRTHDAY", "LOCATION"]
    at(datetime(2030, 3, 2, 12, 0, tzinfo=UTC))  # a new day: the cap starts again
    await notifications.enqueue(mo, kind="CAMPAIGN", title="Next day", body="x", dedupe_key="cap-3", due_at=clock.now())
    assert (await dispatch_due(PROGRAM, sender)).sent == 1


async def test_weekly_cap_counts_seven_days_and_then_lets_go(fcm, sender):
    """The demo program: 2 a day, 5 in any 7 days."""
    at(datetime(2030, 3, 4, 12, 0, tzinfo=UTC))
    zoe = await member("zoe@example.com", token="token-zoe-1")
    start = clock.now()
    for day in range(3):
        at(start + timedelta(days=day))
        for i in range(2):
            key = f"week-{day}-{i}"
            await notifications.enqueue(zoe, kind="CAMPAIGN", title=key, body="x", dedupe_key=key, due_at=clock.now())
        await dispatch_due(PROGRAM, sender)
    # days 1 and 2: two each; day 3: the fifth goes, the sixth meets the weekly cap
    assert [s for _, s, _ in await states(zoe)] == ["SENT"] * 5 + ["SUPPRESSED"]
    assert (await states(zoe))[-1][2] == "WEEKLY_CAP: 5 already sent in 7 days"
    assert len(fcm.to("token-zoe-1")) == 5
    at(start + timedelta(days=7, hours=1))  # the first day's two have left the window
    await notifications.enqueue(zoe, kind="CAMPAIGN", title="later", body="x", dedupe_key="week-7", due_at=clock.now())
    assert (await dispatch_due(PROGRAM, sender)).sent == 1


async def test_a_claim_takes_the_highest_priority_first_across_a_backlog():
    """Older and more numerous campaigns do not hold back a birthday and an expiry
    warning: the first batch of two holds those, the rest follows by due time."""
    at(datetime(2030, 3, 5, 12, 0, tzinfo=UTC))
    now = clock.now()
    ids = [await member(f"q{i}@example.com") for i in range(5)]
    for i, m in enumerate(ids[:3]):
        when = now - timedelta(hours=3 - i)  # campaigns due first
        await notifications.enqueue(m, kind="CAMPAIGN", title="c", body="x", dedupe_key=f"q-{i}", due_at=when)
    await notifications.enqueue(ids[3], kind="BIRTHDAY", title="b", body="x", dedupe_key="q-b", due_at=now)
    await notifications.enqueue(ids[4], kind="EXPIRY", title="e", body="x", dedupe_key="q-e", due_at=now)
    await notifications.enqueue(
        ids[0], kind="EXPIRY", title="later", body="x", dedupe_key="q-l", due_at=now + timedelta(hours=1)
    )

    first = await claim(PROGRAM, clock.now(), 2)
    assert [(n.kind, n.member_id) for n in first] == [("EXPIRY", ids[4]), ("BIRTHDAY", ids[3])]
    second = await claim(PROGRAM, clock.now(), 5)  # what is not due yet stays queued
    assert [(n.kind, n.member_id) for n in second] == [("CAMPAIGN", m) for m in ids[:3]]
    assert await claim(PROGRAM, clock.now(), 5) == []
    # a claim whose lease ran out (its worker died) is claimed again, once
    at(datetime(2030, 3, 5, 12, 3, tzinfo=UTC))
    again = await claim(PROGRAM, clock.now(), 10)
    assert sorted(n.member_id for n in again) == sorted([ids[4], ids[3], *ids[:3]])
    assert await claim(PROGRAM, clock.now(), 10) == []


async def test_fcm_answers_prune_back_off_and_retry(fcm, sender):
    at(datetime(2030, 4, 1, 12, 0, tzinfo=UTC))
    gone = await member("gone@example.com", token="unregistered-gone-1")
    busy = await member("busy@example.com", token="quota-busy-1")
    flaky = await member("flaky@example.com", token="flaky-flaky-1")
    bad = await member("bad@example.com", token="invalid-bad-1")
    now = clock.now()
    for m in (gone, busy, flaky, bad):
        await notifications.enqueue(m, kind="CAMPAIGN", title="Hi", body="There", dedupe_key=f"fcm-{m}", due_at=now)

    result = await dispatch_due(PROGRAM, sender)
    # UNREGISTERED: the device is gone for good
    assert result.pruned == 1
    assert (
        await connections.get("default").execute_query_dict("SELECT 1 FROM devices WHERE member_id = $1", [gone]) == []
    )
    # INVALID_ARGUMENT: that message fails, the token stays
    assert await states(bad) == [("CAMPAIGN", "FAILED", "FCM: INVALID_ARGUMENT")]
    assert await connections.get("default").execute_query_dict("SELECT 1 FROM devices WHERE member_id = $1", [bad])
    # 429 with Retry-After: 120 waits at least that long
    busy_row = (
        await connections.get("default").execute_query_dict(
            "SELECT state, due_at, reason FROM notifications WHERE member_id = $1", [busy]
        )
    )[0]
    assert busy_row["state"] == "QUEUED" and busy_row["due_at"] >= now + timedelta(seconds=120)
    assert busy_row["reason"] == "RETRY: QUOTA_EXCEEDED"
    # 503: retried, and delivered once FCM is back
    if await states(flaky) != [("CAMPAIGN", "SENT", None)]:  # firebase-admin may retry 503 itself
        at(now + timedelta(seconds=30))
        await dispatch_due(PROGRAM, sender)
    assert await states(flaky) == [("CAMPAIGN", "SENT", None)]
    assert ("flaky-flaky-1", "UNAVAILABLE") in fcm.refused
    assert len(fcm.to("flaky-flaky-1")) == 1


async def test_under_an_inactivity_policy_the_expiry_warning_follows_the_new_date(fcm, sender):
    program = PROGRAM.model_copy(update={"expiry": PROGRAM.expiry.model_copy(update={"extend_on_activity": True})})
    at(datetime(2030, 1, 10, 12, tzinfo=UTC))
    ana = await member("ana@example.com", token="token-ana-1", program=program)
    # the welcome bonus (100 points) would expire at the start of 11 January 2031, Paris time
    at(datetime(2031, 1, 4, 12, tzinfo=UTC))  # 7 days before: warned
    assert await queue_expiry_warnings(program) == 1
    # a coffee the same day: every open point now lives 12 months from today
    await purchases.record(
        program, member_id=ana, external_id="coffee", amount=Decimal("3.20"), currency="EUR", channel="STORE"
    )
    result = await dispatch_due(program, sender)
    assert result.sent == 0 and fcm.to("token-ana-1") == []  # nothing expires on the 10th any more
    assert await states(ana) == [
        ("EXPIRY", "SUPPRESSED", "NOTHING_TO_EXPIRE: the points were spent or now expire later")
    ]
    at(datetime(2031, 12, 29, 12, tzinfo=UTC))  # 7 days before the new date
    assert await queue_expiry_warnings(program) == 1
    assert (await dispatch_due(program, sender)).sent == 1
    (push,) = fcm.to("token-ana-1")
    # 100 welcome points and the coffee's, on the purchase's date
    assert push["notification"]["body"].startswith("132 points expire after 04 January.")
    assert push["data"]["lastDay"] == "2032-01-04"
