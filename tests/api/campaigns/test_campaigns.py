"""Campaigns through the contract's documents, as the marketers' tools send them: create,
schedule, cancel, stats (with the app's opens and the till's purchases), and the errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.relay import to_global_id
from domain import clock
from domain.program.config import load
from domain.segments import service as segments
from notifications import campaigns as campaign_worker
from notifications.dispatch import dispatch_due
from notifications.push import LogSender
from tests.conftest import OPS, count, enrolled, error_codes, purchase

PROGRAM = load(None)  # the app's program in these tests: the demo one
NOON = datetime(2030, 3, 12, 12, tzinfo=UTC)
MESSAGE = {"title": "Spring menu", "body": "New teas are in.", "deepLink": "loyalty://offers"}


def at(when: datetime) -> None:
    clock.reset()
    clock.advance(when - clock.now())


async def create(gql, tokens, **input) -> dict:
    result = await gql(OPS["CreateCampaign"], {"input": {"name": "Spring", "message": MESSAGE, **input}},
                       token=tokens.marketer())  # fmt: skip
    return result["data"]["createCampaign"]


async def schedule(gql, tokens, campaign_id: str, send_at: datetime) -> dict:
    result = await gql(
        OPS["ScheduleCampaign"], {"campaignId": campaign_id, "sendAt": send_at.isoformat()}, token=tokens.marketer()
    )
    return result["data"]["scheduleCampaign"]


async def stats(gql, tokens, campaign_id: str) -> dict:
    return (await gql(OPS["CampaignStats"], {"campaignId": campaign_id}, token=tokens.marketer()))["data"]["node"]


async def consenting(gql, tokens, email: str, device: str):
    m = await enrolled(gql, tokens, email)
    await gql("mutation { updatePreferences(input: {pushMarketing: true}) { userErrors { code } } }", token=m.token)
    await gql(OPS["RegisterDevice"], {"fcmToken": device, "platform": "IOS"}, token=m.token)
    return m


async def test_a_campaign_sent_opened_and_converted_as_the_stats_say(gql, tokens):
    at(NOON - timedelta(days=1))
    ana = await consenting(gql, tokens, "ana@example.com", "token-ana-0001")
    bo = await consenting(gql, tokens, "bo@example.com", "token-bo-00001")
    cy = await enrolled(gql, tokens, "cy@example.com")  # no consent, no device
    made = await create(gql, tokens, audience={"memberIds": [ana.id, bo.id, cy.id]}, attributionDays=2)
    assert made["userErrors"] == [] and made["campaign"]["status"] == "DRAFT"
    campaign_id = made["campaign"]["id"]
    scheduled = await schedule(gql, tokens, campaign_id, NOON)
    assert scheduled == {"campaign": {"id": campaign_id, "status": "SCHEDULED", "sendAt": "2030-03-12T12:00:00+00:00"},
                         "userErrors": []}  # fmt: skip

    at(NOON)
    sender = LogSender()
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)
    assert sorted(p.token for p in sender.sent) == ["token-ana-0001", "token-bo-00001"]

    ana.token = tokens.member(ana.uuid)  # a token of today: the clock moved a day
    inbox = await gql("{ me { notifications(first: 5) { edges { node { id title } } } } }", token=ana.token)
    (edge,) = inbox["data"]["me"]["notifications"]["edges"]
    assert edge["node"]["title"] == "Spring menu"
    opened = await gql(
        "mutation($id: ID!) { markNotification(input: {notificationId: $id, opened: true}) { userErrors { code } } }",
        {"id": edge["node"]["id"]},
        token=ana.token,
    )
    assert opened["data"]["markNotification"]["userErrors"] == []
    at(NOON + timedelta(days=1))
    assert (await purchase(gql, tokens, ana, "R-1", "12.00"))["userErrors"] == []  # within the 2 days
    at(NOON + timedelta(days=3))
    assert (await purchase(gql, tokens, bo, "R-2", "12.00"))["userErrors"] == []  # after them

    node = await stats(gql, tokens, campaign_id)
    assert node == {
        "id": campaign_id,
        "status": "SENT",
        "stats": {"targeted": 3, "sent": 2, "failed": 0, "suppressed": 1, "opened": 1, "converted": 1},
    }
    detail = await gql(
        "query($id: ID!) { node(id: $id) { ... on Campaign { stats { suppressedByReason { reason count } holdout"
        " variants { variant sent converted uplift { difference } } } } } }",
        {"id": campaign_id},
        token=tokens.marketer(),
    )
    assert detail["data"]["node"]["stats"] == {
        "suppressedByReason": [{"reason": "NO_CONSENT", "count": 1}],
        "holdout": 0,
        "variants": [{"variant": "A", "sent": 2, "converted": 1, "uplift": None}],  # no holdout, no uplift
    }


async def test_cancel_until_the_send_starts(gql, tokens):
    at(NOON - timedelta(hours=2))
    ana = await consenting(gql, tokens, "ana@example.com", "token-ana-0001")
    campaign_id = (await create(gql, tokens, audience={"memberIds": [ana.id]}))["campaign"]["id"]
    await schedule(gql, tokens, campaign_id, NOON)
    cancelled = await gql(OPS["CancelCampaign"], {"campaignId": campaign_id}, token=tokens.marketer())
    assert cancelled["data"]["cancelCampaign"] == {"campaign": {"id": campaign_id, "status": "CANCELLED"},
                                                   "userErrors": []}  # fmt: skip
    again = await gql(OPS["CancelCampaign"], {"campaignId": campaign_id}, token=tokens.marketer())
    assert [e["code"] for e in again["data"]["cancelCampaign"]["userErrors"]] == ["NOT_ELIGIBLE"]
    moved = await schedule(gql, tokens, campaign_id, NOON + timedelta(days=1))
    assert [e["code"] for e in moved["userErrors"]] == ["NOT_ELIGIBLE"]
    at(NOON)
    sender = LogSender()
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)
    assert sender.sent == []


BAD = [
    ({"audience": {}}, "audience"),
    ({"audience": {"segmentKeys": ["vip"]}}, "audience.segmentKeys"),
    ({"audience": {"tierIds": [to_global_id("Tier", "platinum")]}}, "audience.tierIds"),
    ({"audience": {"memberIds": ["not-an-id"]}}, "audience.memberIds"),
    ({"holdoutPercent": 95}, "holdoutPercent"),
    ({"holdoutPercent": -1}, "holdoutPercent"),
    ({"attributionDays": 0}, "attributionDays"),
    ({"name": "  "}, "name"),
    ({"message": {"title": "Hi", "body": ""}}, "message.body"),
    ({"message": {"title": "Hi", "body": "x", "deepLink": "no link"}}, "message.deepLink"),
    ({"message": {"title": "Hi", "body": "x", "locales": [{"locale": "??", "title": "a", "body": "b"}]}},
     "message.locales"),
    ({"variants": [{"key": "A", "weight": 1, "message": MESSAGE}, {"key": "B", "weight": 1, "message": MESSAGE}]},
     "message"),  # a message and variants
    ({"message": None, "variants": [{"key": "A", "weight": 1, "message": MESSAGE}]}, "variants"),  # one variant
    ({"message": None, "variants": [{"key": "A", "weight": 1, "message": MESSAGE}] * 2}, "variants"),  # same key
    ({"offerId": to_global_id("Reward", "2f1c1a3e-1111-4111-8111-111111111111")}, "offerId"),
]  # fmt: skip


@pytest.mark.parametrize(("input", "field"), BAD, ids=[f for _, f in BAD])
async def test_bad_input_is_a_precise_error_and_writes_nothing(gql, tokens, database, input, field):
    ana = await enrolled(gql, tokens, "ana@example.com")
    made = await create(gql, tokens, **{"audience": {"memberIds": [ana.id]}, **input})
    assert made["campaign"] is None
    assert [(e["code"], e["field"]) for e in made["userErrors"]] == [("INVALID_INPUT", field)], made
    assert await count(database, "campaigns") == 0


async def test_scheduling_errors(gql, tokens):
    at(NOON)
    ana = await enrolled(gql, tokens, "ana@example.com")
    campaign_id = (await create(gql, tokens, audience={"memberIds": [ana.id]}))["campaign"]["id"]
    past = await schedule(gql, tokens, campaign_id, NOON - timedelta(minutes=1))
    assert [(e["code"], e["field"]) for e in past["userErrors"]] == [("INVALID_INPUT", "sendAt")]
    far = await schedule(gql, tokens, campaign_id, NOON + timedelta(days=400))
    assert [(e["code"], e["field"]) for e in far["userErrors"]] == [("INVALID_INPUT", "sendAt")]
    unknown = await schedule(gql, tokens, to_global_id("Campaign", "2f1c1a3e-1111-4111-8111-111111111111"), NOON)
    assert [e["code"] for e in unknown["userErrors"]] == ["NOT_FOUND"]
    assert (await stats(gql, tokens, campaign_id))["status"] == "DRAFT"  # nothing changed


async def test_a_segment_audience_is_who_the_segment_holds_when_the_campaign_starts(gql, tokens):
    at(NOON - timedelta(hours=2))
    await consenting(gql, tokens, "ana@example.com", "token-ana-0001")
    bo = await consenting(gql, tokens, "bo@example.com", "token-bo-00001")
    for n in range(3):  # three purchases: Bo is no longer new
        await purchase(gql, tokens, bo.id, f"bo-{n}", "12.00")
    await segments.recompute(PROGRAM)  # the hourly job
    unknown = await create(gql, tokens, audience={"segmentKeys": ["no_such_segment"]})
    assert [(e["code"], e["field"]) for e in unknown["userErrors"]] == [("INVALID_INPUT", "audience.segmentKeys")]
    made = await create(gql, tokens, audience={"segmentKeys": ["new"]})
    assert made["userErrors"] == []
    assert (await schedule(gql, tokens, made["campaign"]["id"], NOON))["userErrors"] == []
    at(NOON)
    sender = LogSender()
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)
    assert [p.token for p in sender.sent] == ["token-ana-0001"]  # Ana is new; Bo is not any more
    assert (await stats(gql, tokens, made["campaign"]["id"]))["stats"]["targeted"] == 1


async def test_members_and_staff_cannot_run_campaigns(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    for token in (ana.token, tokens.staff()):
        result = await gql(OPS["CreateCampaign"], {"input": {"name": "x", "audience": {"memberIds": [ana.id]},
                                                             "message": MESSAGE}}, token=token)  # fmt: skip
        assert error_codes(result) == ["FORBIDDEN"]


async def test_the_audience_preview_counts_holdout_consent_and_devices(gql, tokens):
    at(NOON)
    people = [await consenting(gql, tokens, f"p{i}@example.com", f"token-p{i:08d}") for i in range(30)]
    silent = [await enrolled(gql, tokens, f"s{i}@example.com") for i in range(5)]  # no consent, no device
    made = await create(gql, tokens, audience={"memberIds": [m.id for m in people + silent]}, holdoutPercent=20)
    result = await gql(
        "query($id: ID!) { node(id: $id) { ... on Campaign { audiencePreview"
        " { audience holdout withoutConsent withoutDevice reachable } } } }",
        {"id": made["campaign"]["id"]},
        token=tokens.marketer(),
    )
    p = result["data"]["node"]["audiencePreview"]
    assert p["audience"] == 35 and p["withoutDevice"] == 0
    assert p["holdout"] + p["withoutConsent"] + p["reachable"] == 35
    assert 0 < p["holdout"] < 20 and p["withoutConsent"] <= 5

    await schedule(gql, tokens, made["campaign"]["id"], NOON + timedelta(hours=1))
    at(NOON + timedelta(hours=1))
    sender = LogSender()
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)
    assert len(sender.sent) == p["reachable"]  # the preview said so


async def test_an_offer_that_does_not_exist_is_not_found_and_nothing_is_written(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    missing = to_global_id("Offer", "2f1c1a3e-1111-4111-8111-111111111111")
    made = await create(gql, tokens, audience={"memberIds": [ana.id]}, offerId=missing)
    assert made["campaign"] is None
    assert [(e["code"], e["field"]) for e in made["userErrors"]] == [("NOT_FOUND", "offerId")]
    assert await count(database, "campaigns") == 0
