"""Campaigns through the worker's steps (start what is due, dispatch), the real
firebase-admin client and the fake FCM, with the clock moved: who gets the message,
when, once; what the stats say."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from tortoise import connections

from domain import clock
from domain.campaigns import service as campaigns
from domain.notifications import service as notifications
from domain.segments import service as segments
from notifications import campaigns as campaign_worker
from notifications.dispatch import claim, dispatch_due
from notifications.push import FcmSender
from tests.conftest import buy
from tests.notifications.conftest import PROGRAM, at, member

DAY = datetime(2030, 3, 12).date()  # no daylight-saving change near it in these zones
ZONES = ("Asia/Tokyo", "Europe/Paris", "America/New_York")
MESSAGE = campaigns.Message(title="Spring menu", body="New teas are in.", deep_link="loyalty://offers")


async def run_worker(sender, batch: int = 500) -> None:
    """One pass of the worker's loop: start what is due, send what is due."""
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender, batch=batch)


async def audience(count_per_zone: int, unconsented_every: int | None = 5) -> dict[uuid.UUID, tuple[str, str, bool]]:
    """Members in each zone, every `unconsented_every`-th without push consent:
    member id -> (zone, token, consents)."""
    people = {}
    for zone in ZONES:
        for i in range(count_per_zone):
            token = f"token-{zone.split('/')[1].lower()}-{i:04d}"
            consents = unconsented_every is None or i % unconsented_every != 0
            m = await member(f"{token}@example.com", tz=zone, push=consents, token=token)
            people[m] = (zone, token, consents)
    return people


async def recipients(campaign_id) -> dict[uuid.UUID, tuple[str | None, str, str | None]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT member_id, variant, outcome, reason FROM campaign_recipients WHERE campaign_id = $1", [campaign_id]
    )
    return {r["member_id"]: (r["variant"], r["outcome"], r["reason"]) for r in rows}


def local(zone: str, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), tzinfo=ZoneInfo(zone))


async def through_each_zones_ten_oclock(fcm, sender, people) -> dict[str, set[str]]:
    """The clock moved east to west (Tokyo's 10:00 comes first) to 9:59 and 10:00 in each
    zone, the worker run at each: nobody of a zone gets anything at 9:59, and what
    arrives at its 10:00 goes to that zone's members only. The tokens reached, by zone."""
    zone_of = {t: z for z, t, _ in people.values()}
    arrived: dict[str, set[str]] = {}
    for zone in ZONES:
        at(local(zone, 9, 59))
        await run_worker(sender)
        before = {m["token"] for m in fcm.delivered}
        assert not any(zone_of[t] == zone for t in before), f"{zone} before 10:00"
        at(local(zone, 10))
        await run_worker(sender)
        arrived[zone] = {m["token"] for m in fcm.delivered} - before
        assert {zone_of[t] for t in arrived[zone]} <= {zone}
    return arrived


async def test_a_local_hour_campaign_reaches_each_zone_at_its_ten_oclock_minus_holdout_and_unconsented(fcm, sender):
    at(datetime(2030, 3, 10, 12, tzinfo=UTC))
    people = await audience(40)
    campaign = await campaigns.create(
        PROGRAM, name="Spring", audience=campaigns.Audience(member_ids=tuple(people)), message=MESSAGE,
        holdout_percent=10,
    )  # fmt: skip
    await campaigns.schedule(campaign.id, datetime.combine(DAY, time(10), tzinfo=UTC), local_time=True)

    delivered_by_zone = await through_each_zones_ten_oclock(fcm, sender, people)

    chosen = await recipients(campaign.id)
    assert set(chosen) == set(people)  # everyone in the audience has a row
    held_out = {m for m, (variant, outcome, _) in chosen.items() if outcome == "HOLDOUT"}
    assert all(chosen[m][0] is None for m in held_out)
    assert 3 <= len(held_out) <= 25, len(held_out)  # 10% of 120, give or take chance
    expected = {t for m, (_, t, consents) in people.items() if consents and m not in held_out}
    got = {m["token"] for m in fcm.delivered}
    assert got == expected  # the non-holdout consenting members, and only them
    assert len(fcm.delivered) == len(expected)  # once each
    for zone in ZONES:
        assert delivered_by_zone[zone] == {t for m, (z, t, _) in people.items() if z == zone and t in expected}
    message = fcm.delivered[0]
    assert message["notification"] == {"title": "Spring menu", "body": "New teas are in."}
    assert message["data"]["campaignId"] == str(campaign.id) and message["data"]["deepLink"] == "loyalty://offers"

    found = await campaigns.find(campaign.id)
    assert found.status == "SENT"
    s = await campaigns.stats(found)
    unconsented = sum(1 for m, (_, _, c) in people.items() if not c and m not in held_out)
    assert (s.counts.targeted, s.counts.sent, s.counts.failed, s.counts.pending) == (
        len(people) - len(held_out), len(expected), 0, 0,
    )  # fmt: skip
    assert s.counts.suppressed == unconsented
    assert dict(s.counts.suppressed_by_reason) == {"NO_CONSENT": unconsented}
    assert s.counts.targeted == s.counts.sent + s.counts.failed + s.counts.suppressed + s.counts.pending
    assert s.holdout == len(held_out) and s.holdout + s.counts.targeted == len(people)


async def test_the_holdout_is_stable_and_about_its_share():
    campaign_id = uuid.uuid4()
    members = [uuid.uuid4() for _ in range(10_000)]
    shares = [campaigns.share(campaign_id, m, "holdout") for m in members]
    assert shares == [campaigns.share(campaign_id, m, "holdout") for m in members]  # the same every time
    held = sum(1 for s in shares if s < 0.10)
    assert 850 <= held <= 1150, held  # 10% of 10,000 within about 5 standard deviations
    another = uuid.uuid4()
    elsewhere = [campaigns.share(another, m, "holdout") < 0.10 for m in members]
    both = sum(1 for s, e in zip(shares, elsewhere, strict=True) if s < 0.10 and e)
    assert both < 200  # another campaign holds out other people (about 100 in common by chance)


async def test_two_workers_running_the_same_campaign_send_each_recipient_one_message(fcm):
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    people = {}
    for i in range(150):
        token = f"token-two-{i:04d}"
        people[await member(f"two{i}@example.com", token=token)] = token
    campaign = await campaigns.create(
        PROGRAM, name="Both", audience=campaigns.Audience(member_ids=tuple(people)), message=MESSAGE
    )
    await campaigns.schedule(campaign.id, datetime(2030, 3, 12, 10, tzinfo=UTC))
    at(datetime(2030, 3, 12, 10, tzinfo=UTC))
    senders = [FcmSender(fcm.credentials, endpoint=fcm.endpoint) for _ in range(2)]
    try:
        # Each worker starts due campaigns and dispatches in small batches, at the same time.
        await asyncio.gather(*(run_worker(s, batch=10) for s in senders), *(run_worker(s, batch=7) for s in senders))
    finally:
        for s in senders:
            await s.close()
    tokens = [m["token"] for m in fcm.delivered]
    assert sorted(tokens) == sorted(people.values())  # every recipient, exactly once
    chosen = await recipients(campaign.id)
    assert {o for _, o, _ in chosen.values()} == {"SENT"} and len(chosen) == 150
    count = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM notifications WHERE dedupe_key LIKE 'campaign:%'"
    )
    assert count[0]["n"] == 150


async def test_a_campaign_cancelled_before_the_hour_sends_nothing(fcm, sender):
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    ana = await member("ana@example.com", tz="Europe/Paris", token="token-ana-0001")
    campaign = await campaigns.create(PROGRAM, name="Oops", audience=campaigns.Audience(member_ids=(ana,)),
                                      message=MESSAGE)  # fmt: skip
    await campaigns.schedule(campaign.id, datetime.combine(DAY, time(10), tzinfo=UTC), local_time=True)
    at(local("Europe/Paris", 9, 30))
    assert (await campaigns.cancel(campaign.id)).status == "CANCELLED"
    for hour in (10, 11, 23):
        at(local("Europe/Paris", hour))
        await run_worker(sender)
    assert fcm.delivered == []
    assert await recipients(campaign.id) == {}
    found = await campaigns.find(campaign.id)
    assert found.status == "CANCELLED" and found.started_at is None


async def test_a_started_campaign_can_no_longer_be_cancelled_or_moved(fcm, sender):
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    ana = await member("ana@example.com", token="token-ana-0001")
    campaign = await campaigns.create(PROGRAM, name="Now", audience=campaigns.Audience(member_ids=(ana,)),
                                      message=MESSAGE)  # fmt: skip
    await campaigns.schedule(campaign.id, datetime(2030, 3, 12, 10, tzinfo=UTC))
    at(datetime(2030, 3, 12, 10, tzinfo=UTC))
    await run_worker(sender)
    assert [m["token"] for m in fcm.delivered] == ["token-ana-0001"]
    for attempt in (campaigns.cancel(campaign.id), campaigns.schedule(campaign.id, datetime(2030, 4, 1, tzinfo=UTC))):
        try:
            await attempt
        except campaigns.AlreadyStarted as exc:
            assert exc.code == "NOT_ELIGIBLE"
        else:
            raise AssertionError("a sent campaign was changed")


async def test_variants_split_the_audience_by_weight_and_each_member_reads_their_language(fcm, sender):
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    people = {}
    for i in range(200):
        token = f"token-ab-{i:04d}"
        m = await member(f"ab{i}@example.com", token=token)
        people[m] = token
    await connections.get("default").execute_query(
        "UPDATE members SET locale = 'fr-CA' WHERE id = ANY($1::uuid[])", [list(people)[:20]]
    )
    french = campaigns.Text("Menu de printemps", "Nouveaux thés.")
    a = campaigns.Message("Spring A", "Body A", locales={"fr": french})
    b = campaigns.Message("Spring B", "Body B")
    campaign = await campaigns.create(
        PROGRAM, name="AB", audience=campaigns.Audience(member_ids=tuple(people)),
        variants=[campaigns.Variant("A", 3, a), campaigns.Variant("B", 1, b)],
    )  # fmt: skip
    await campaigns.schedule(campaign.id, datetime(2030, 3, 12, 10, tzinfo=UTC))
    at(datetime(2030, 3, 12, 10, tzinfo=UTC))
    await run_worker(sender)
    chosen = await recipients(campaign.id)
    by_token = {m["token"]: m for m in fcm.delivered}
    split = {"A": 0, "B": 0}
    for member_id, (variant, outcome, _) in chosen.items():
        assert outcome == "SENT"
        split[variant] += 1
        message = by_token[people[member_id]]
        assert message["data"]["variant"] == variant
        expected_title = {"A": "Spring A", "B": "Spring B"}[variant]
        if variant == "A" and member_id in list(people)[:20]:
            expected_title = "Menu de printemps"  # fr-CA falls back to fr
        assert message["notification"]["title"] == expected_title
    assert 120 <= split["A"] <= 180, split  # 3:1 of 200
    s = await campaigns.stats(await campaigns.find(campaign.id))
    assert {v.key: v.counts.sent for v in s.variants} == split


async def test_a_paused_campaign_holds_the_rest_until_resumed(fcm, sender):
    at(datetime(2030, 3, 10, 12, tzinfo=UTC))
    people = await audience(5, unconsented_every=None)  # everyone consents
    campaign = await campaigns.create(PROGRAM, name="Pause", audience=campaigns.Audience(member_ids=tuple(people)),
                                      message=MESSAGE)  # fmt: skip
    await campaigns.schedule(campaign.id, datetime.combine(DAY, time(10), tzinfo=UTC), local_time=True)

    def tokens_in(*zones: str) -> set[str]:
        return {t for z, t, _ in people.values() if z in zones}

    at(local("Asia/Tokyo", 10))
    await run_worker(sender)
    assert {m["token"] for m in fcm.delivered} == tokens_in("Asia/Tokyo")
    assert (await campaigns.pause(campaign.id)).status == "PAUSED"
    at(local("Europe/Paris", 10))
    await run_worker(sender)
    assert {m["token"] for m in fcm.delivered} == tokens_in("Asia/Tokyo")  # Paris held
    s = await campaigns.stats(await campaigns.find(campaign.id))
    assert (s.counts.sent, s.counts.pending) == (5, 10)

    at(local("Europe/Paris", 10, 30))
    assert (await campaigns.resume(campaign.id)).status == "SENDING"
    await run_worker(sender)
    assert {m["token"] for m in fcm.delivered} == tokens_in("Asia/Tokyo", "Europe/Paris")  # Paris, late
    at(local("America/New_York", 10))
    await run_worker(sender)
    assert sorted(m["token"] for m in fcm.delivered) == sorted(tokens_in(*ZONES))  # once each
    assert (await campaigns.find(campaign.id)).status == "SENT"
    for change in (campaigns.pause, campaigns.resume):
        try:
            await change(campaign.id)
        except campaigns.AlreadyStarted:
            pass
        else:
            raise AssertionError("a sent campaign was paused or resumed")


async def test_a_campaign_to_at_risk_reaches_at_ten_local_the_non_holdout_consenting_members_of_the_segment(
    fcm, sender
):
    """The issue's first test with a real segment: members become `at_risk` by their own
    purchases (3 or more, none for 45 days) as the clock moves and the worker recomputes."""
    at(datetime(2030, 1, 5, 12, tzinfo=UTC))
    people = await audience(24)  # every 5th without consent
    regulars = {m for i, m in enumerate(people) if i % 6 != 1}  # the rest buy once: never at_risk
    back = {m for i, m in enumerate(people) if i % 6 == 2}  # regulars who came back recently
    for n, m in enumerate(people):
        for visit in range(3 if m in regulars else 1):
            await buy(PROGRAM, m, f"jan-{n}-{visit}", "4.50")
    at(datetime(2030, 3, 2, 12, tzinfo=UTC))
    for n, m in enumerate(back):
        await buy(PROGRAM, m, f"mar-{n}", "4.50")
    at(datetime(2030, 3, 10, 12, tzinfo=UTC))  # 64 days after January's visits, 8 after March's
    await segments.recompute(PROGRAM)  # the worker's hourly job
    at_risk = regulars - back
    assert set(await segments.members_of(["at_risk"])) == at_risk
    campaign = await campaigns.create(
        PROGRAM, name="Come back", audience=campaigns.Audience(segment_keys=("at_risk",)), message=MESSAGE,
        holdout_percent=10,
    )  # fmt: skip
    await campaigns.schedule(campaign.id, datetime.combine(DAY, time(10), tzinfo=UTC), local_time=True)

    await through_each_zones_ten_oclock(fcm, sender, people)

    chosen = await recipients(campaign.id)
    assert set(chosen) == at_risk  # the segment, nobody else
    held_out = {m for m, (_, outcome, _) in chosen.items() if outcome == "HOLDOUT"}
    assert 1 <= len(held_out) <= 12, len(held_out)  # 10% of the segment, give or take chance
    expected = sorted(people[m][1] for m in at_risk - held_out if people[m][2])
    assert sorted(m["token"] for m in fcm.delivered) == expected  # once each, and only them
    unconsented = sum(1 for m in at_risk - held_out if not people[m][2])
    assert unconsented > 0
    s = await campaigns.stats(await campaigns.find(campaign.id))
    assert (s.counts.targeted, s.counts.sent, s.counts.suppressed, s.counts.failed, s.counts.pending) == (
        len(at_risk) - len(held_out), len(expected), unconsented, 0, 0,
    )  # fmt: skip
    assert dict(s.counts.suppressed_by_reason) == {"NO_CONSENT": unconsented}
    assert s.holdout == len(held_out) and s.holdout + s.counts.targeted == len(at_risk)
    assert s.counts.converted == 0 and s.holdout_converted == 0  # nobody bought since


async def _six_due_at_ten(prefix: str) -> tuple[uuid.UUID, dict[uuid.UUID, str]]:
    """Six members and a campaign to them that has started at 10:00 UTC (queued, unsent)."""
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    people = {}
    for i in range(6):
        token = f"token-{prefix}-{i:04d}"
        people[await member(f"{prefix}{i}@example.com", token=token)] = token
    campaign = await campaigns.create(PROGRAM, name=prefix, audience=campaigns.Audience(member_ids=tuple(people)),
                                      message=MESSAGE)  # fmt: skip
    await campaigns.schedule(campaign.id, datetime(2030, 3, 12, 10, tzinfo=UTC))
    at(datetime(2030, 3, 12, 10, tzinfo=UTC))
    await campaign_worker.start_due(PROGRAM)
    return campaign.id, people


async def notification_states(campaign_id) -> list[str]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT n.state FROM notifications n JOIN campaign_recipients r ON r.notification_id = n.id"
        " WHERE r.campaign_id = $1 ORDER BY n.state",
        [campaign_id],
    )
    return [r["state"] for r in rows]


async def test_a_paused_campaigns_claims_whose_worker_died_stay_held_until_resumed(fcm, sender):
    campaign_id, people = await _six_due_at_ten("dead")
    claimed = await claim(PROGRAM, clock.now(), 4)  # a worker takes four, then dies before sending
    assert len(claimed) == 4
    assert (await campaigns.pause(campaign_id)).status == "PAUSED"
    at(datetime(2030, 3, 12, 10, 5, tzinfo=UTC))  # its two-minute lease has lapsed
    await run_worker(sender)
    assert fcm.delivered == []  # neither the four it held nor the two still queued
    assert await notification_states(campaign_id) == ["HELD"] * 6

    # A marketer's test still goes to a paused campaign's named device, and only there.
    ana = next(iter(people))
    (device,) = await notifications.devices_of(ana)
    test = await campaigns.send_test(campaign_id, device.id, actor="mia")
    await run_worker(sender)
    assert [(m["token"], m["notification"]["title"]) for m in fcm.delivered] == [(people[ana], "[Test] Spring menu")]
    fcm.reset()
    assert test.campaign.status == "PAUSED"

    assert (await campaigns.resume(campaign_id)).status == "SENDING"
    await run_worker(sender)
    assert sorted(m["token"] for m in fcm.delivered) == sorted(people.values())  # each once
    assert (await campaigns.find(campaign_id)).status == "SENT"
    s = await campaigns.stats(await campaigns.find(campaign_id))
    assert (s.counts.targeted, s.counts.sent, s.counts.pending) == (6, 6, 0)


async def test_resumed_while_a_worker_still_holds_its_lease_they_stay_with_it(fcm, sender):
    campaign_id, people = await _six_due_at_ten("live")
    claimed = await claim(PROGRAM, clock.now(), 4)  # lease until 10:02
    await campaigns.pause(campaign_id)
    at(datetime(2030, 3, 12, 10, 1, tzinfo=UTC))
    await campaigns.resume(campaign_id)  # the lease is live: those four are still that worker's
    assert await notification_states(campaign_id) == ["QUEUED"] * 2 + ["SENDING"] * 4
    await run_worker(sender)  # another worker: the two that were queued, not the four
    assert len(fcm.delivered) == 2
    assert {m["token"] for m in fcm.delivered}.isdisjoint(people[n.member_id] for n in claimed)
    at(datetime(2030, 3, 12, 10, 3, tzinfo=UTC))  # the first worker died: its lease lapses
    await run_worker(sender)
    assert sorted(m["token"] for m in fcm.delivered) == sorted(people.values())  # each once
    assert (await campaigns.find(campaign_id)).status == "SENT"


class PausingSender:
    """The real sender; the campaign is paused as the worker sends its batch (in hand)."""

    def __init__(self, sender, campaign_id) -> None:
        self.sender, self.campaign_id = sender, campaign_id

    async def send(self, pushes):
        await campaigns.pause(self.campaign_id)
        return await self.sender.send(pushes)


async def test_paused_while_in_hand_what_is_sent_counts_and_a_retry_waits_for_resume(fcm, sender):
    at(datetime(2030, 3, 12, 8, tzinfo=UTC))
    people = {}
    for i, token in enumerate(["token-hand-0001", "token-hand-0002", "quota-hand-0003", "quota-hand-0004"]):
        people[await member(f"hand{i}@example.com", token=token)] = token
    campaign = await campaigns.create(PROGRAM, name="Hand", audience=campaigns.Audience(member_ids=tuple(people)),
                                      message=MESSAGE)  # fmt: skip
    await campaigns.schedule(campaign.id, datetime(2030, 3, 12, 10, tzinfo=UTC))
    at(datetime(2030, 3, 12, 10, tzinfo=UTC))
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, PausingSender(sender, campaign.id))
    assert sorted(m["token"] for m in fcm.delivered) == ["token-hand-0001", "token-hand-0002"]  # in hand: out
    assert sorted(t for t, _ in fcm.refused) == ["quota-hand-0003", "quota-hand-0004"]  # FCM: later
    assert await notification_states(campaign.id) == ["HELD", "HELD", "SENT", "SENT"]  # later: after resume
    at(datetime(2030, 3, 12, 10, 10, tzinfo=UTC))  # past the retry's back-off
    await run_worker(sender)
    assert len(fcm.refused) == 2  # not tried again while paused
    await campaigns.resume(campaign.id)
    await run_worker(sender)
    assert len(fcm.refused) == 4 and len(fcm.delivered) == 2  # tried again once resumed (FCM still says later)
    s = await campaigns.stats(await campaigns.find(campaign.id))
    assert (s.counts.sent, s.counts.pending) == (2, 2)
