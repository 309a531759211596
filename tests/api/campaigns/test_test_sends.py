"""sendCampaignTest: a marketer's test of a campaign to one named device, through the
queue and the worker's dispatcher, the real firebase-admin client and the fake FCM: that
device alone gets it, at any hour and past the caps, and the campaign is untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.relay import to_global_id, uuid_of
from domain import clock, db
from domain.program.config import load
from notifications import campaigns as campaign_worker
from notifications.dispatch import dispatch_due
from tests.conftest import OPS, count, enrolled, error_codes

PROGRAM = load(None)  # the app's program in these tests: quiet hours 21-09, 2 a day, 5 a week
LATE = datetime(2030, 3, 12, 23, 30, tzinfo=UTC)  # quiet hours for a member in UTC
SEND_TEST = """
mutation($input: SendCampaignTestInput!) {
  sendCampaignTest(input: $input) {
    campaign { id status } variant locale title body userErrors { code field message }
  }
}"""
VARIANTS = [
    {"key": "A", "weight": 1, "message": {"title": "Spring menu", "body": "New teas are in."}},
    {"key": "B", "weight": 1, "message": {
        "title": "Tea time", "body": "Two for one.", "deepLink": "loyalty://offers",
        "locales": [{"locale": "fr", "title": "L'heure du thé", "body": "Deux pour un."}],
    }},
]  # fmt: skip


def at(when: datetime) -> None:
    clock.reset()
    clock.advance(when - clock.now())


async def with_devices(gql, tokens, email: str, *fcm_tokens: str, consents: bool = True):
    """An enrolled member (consenting or not) and the Device IDs of their app installs."""
    m = await enrolled(gql, tokens, email)
    if consents:
        await gql("mutation { updatePreferences(input: {pushMarketing: true}) { userErrors { code } } }", token=m.token)
    devices = []
    for t in fcm_tokens:
        result = await gql(OPS["RegisterDevice"], {"fcmToken": t, "platform": "IOS"}, token=m.token)
        devices.append(result["data"]["registerDevice"]["device"]["id"])
    return m, devices


async def campaign(gql, tokens, member_ids: list[str], send_at: datetime | None = None) -> str:
    made = await gql(
        OPS["CreateCampaign"],
        {"input": {"name": "Spring", "audience": {"memberIds": member_ids}, "variants": VARIANTS}},
        token=tokens.marketer(),
    )
    campaign_id = made["data"]["createCampaign"]["campaign"]["id"]
    if send_at is not None:
        scheduled = await gql(
            OPS["ScheduleCampaign"], {"campaignId": campaign_id, "sendAt": send_at.isoformat()}, token=tokens.marketer()
        )
        assert scheduled["data"]["scheduleCampaign"]["userErrors"] == []
    return campaign_id


async def send_test(gql, token: str, campaign_id: str, device_id: str, **extra) -> dict:
    result = await gql(SEND_TEST, {"input": {"campaignId": campaign_id, "deviceId": device_id, **extra}}, token=token)
    return result if "errors" in result else result["data"]["sendCampaignTest"]


async def test_only_the_named_device_gets_it_at_any_hour_past_the_caps_and_the_campaign_is_untouched(
    gql, tokens, database, fcm, sender
):
    at(LATE - timedelta(hours=1))
    ana, (phone, _tablet) = await with_devices(gql, tokens, "ana@example.com", "token-ana-phone", "token-ana-tablet")
    bo, _ = await with_devices(gql, tokens, "bo@example.com", "token-bo-phone")
    tomorrow = datetime(2030, 3, 13, 10, tzinfo=UTC)
    campaign_id = await campaign(gql, tokens, [ana.id, bo.id], send_at=tomorrow)

    at(LATE)  # Ana's quiet hours
    sent = await send_test(gql, tokens.marketer(), campaign_id, phone, variant="B", locale="fr-CA")
    assert sent == {
        "campaign": {"id": campaign_id, "status": "SCHEDULED"},
        "variant": "B",
        "locale": "fr-CA",
        "title": "[Test] L'heure du thé",  # fr-CA falls back to fr
        "body": "Deux pour un.",
        "userErrors": [],
    }
    await dispatch_due(PROGRAM, sender)
    (message,) = fcm.delivered  # one message, to the phone alone: not the tablet, not Bo
    assert message["token"] == "token-ana-phone"
    assert message["notification"] == {"title": "[Test] L'heure du thé", "body": "Deux pour un."}
    assert message["data"]["campaignId"] == str(uuid_of(campaign_id, "Campaign"))
    assert (message["data"]["test"], message["data"]["variant"], message["data"]["deepLink"]) == (
        "true", "B", "loyalty://offers",
    )  # fmt: skip

    # Four more (five in all: the weekly cap), the default variant in Ana's own language.
    for _ in range(4):
        again = await send_test(gql, tokens.marketer(), campaign_id, phone)
        assert (again["variant"], again["locale"], again["title"]) == ("A", "en", "[Test] Spring menu")
    await dispatch_due(PROGRAM, sender)
    assert [m["token"] for m in fcm.delivered] == ["token-ana-phone"] * 5

    stats = await gql(OPS["CampaignStats"], {"campaignId": campaign_id}, token=tokens.marketer())
    assert stats["data"]["node"]["status"] == "SCHEDULED"
    assert stats["data"]["node"]["stats"] == {
        "targeted": 0, "sent": 0, "failed": 0, "suppressed": 0, "opened": 0, "converted": 0,
    }  # fmt: skip
    assert await count(database, "campaign_recipients") == 0
    log = await gql("{ auditLog(first: 10) { edges { node { actor action subjectId } } } }", token=tokens.marketer())
    actions = [e["node"] for e in log["data"]["auditLog"]["edges"]]
    assert actions == [{"actor": "mia", "action": "sendCampaignTest", "subjectId": campaign_id}] * 5

    # The campaign itself the next morning: the tests counted toward no cap (five would
    # have filled Ana's week) and made no one a recipient.
    fcm.reset()
    at(tomorrow)
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)
    assert sorted(m["token"] for m in fcm.delivered) == ["token-ana-phone", "token-ana-tablet", "token-bo-phone"]
    assert all(not m["notification"]["title"].startswith("[Test]") for m in fcm.delivered)
    stats = await gql(OPS["CampaignStats"], {"campaignId": campaign_id}, token=tokens.marketer())
    assert stats["data"]["node"]["stats"]["targeted"] == 2 and stats["data"]["node"]["stats"]["sent"] == 2


async def test_errors_are_precise_and_write_nothing(gql, tokens, database, fcm, sender):
    at(LATE)
    ana, (phone,) = await with_devices(gql, tokens, "ana@example.com", "token-ana-phone")
    _, (silent,) = await with_devices(gql, tokens, "cy@example.com", "token-cy-phone", consents=False)
    campaign_id = await campaign(gql, tokens, [ana.id])
    missing_campaign = to_global_id("Campaign", "2f1c1a3e-1111-4111-8111-111111111111")
    missing_device = to_global_id("Device", "2f1c1a3e-1111-4111-8111-111111111111")
    cases = [
        ((missing_campaign, phone, {}), ("NOT_FOUND", "campaignId")),
        ((campaign_id, missing_device, {}), ("NOT_FOUND", "deviceId")),
        ((campaign_id, ana.id, {}), ("INVALID_INPUT", "deviceId")),  # a Member ID
        ((campaign_id, phone, {"variant": "Z"}), ("INVALID_INPUT", "variant")),
        ((campaign_id, phone, {"locale": "??"}), ("INVALID_INPUT", "locale")),
        ((campaign_id, silent, {}), ("NOT_ELIGIBLE", "deviceId")),  # no consent to marketing pushes
    ]
    for (c, d, extra), expected in cases:
        result = await send_test(gql, tokens.marketer(), c, d, **extra)
        assert result["campaign"] is None and result["title"] is None
        assert [(e["code"], e["field"]) for e in result["userErrors"]] == [expected], (c, d, extra)
    for token in (ana.token, tokens.staff()):  # only marketers
        assert error_codes(await send_test(gql, token, campaign_id, phone)) == ["FORBIDDEN"]
    cancelled = await gql(OPS["CancelCampaign"], {"campaignId": campaign_id}, token=tokens.marketer())
    assert cancelled["data"]["cancelCampaign"]["userErrors"] == []
    late = await send_test(gql, tokens.marketer(), campaign_id, phone)
    assert [(e["code"], e["field"]) for e in late["userErrors"]] == [("NOT_ELIGIBLE", "campaignId")]

    assert await count(database, "notifications") == 0
    assert await count(database, "audit_log") == 0
    await dispatch_due(PROGRAM, sender)
    assert fcm.delivered == []


async def test_a_device_that_changed_hands_before_the_send_gets_nothing(gql, tokens, database, fcm, sender):
    at(LATE)
    ana, (phone,) = await with_devices(gql, tokens, "ana@example.com", "token-shared-01")
    bo, _ = await with_devices(gql, tokens, "bo@example.com")
    campaign_id = await campaign(gql, tokens, [ana.id])
    assert (await send_test(gql, tokens.marketer(), campaign_id, phone))["userErrors"] == []
    moved = await gql(OPS["RegisterDevice"], {"fcmToken": "token-shared-01", "platform": "IOS"}, token=bo.token)
    assert moved["data"]["registerDevice"]["device"]["id"] == phone  # the same install, Bo's now
    await dispatch_due(PROGRAM, sender)
    assert fcm.delivered == []  # the test was for Ana's device, not for Bo
    conn = await db.raw_connection(database.credentials)
    try:
        row = await conn.fetchrow("SELECT kind, state, reason FROM notifications")
    finally:
        await conn.close()
    assert tuple(row) == ("CAMPAIGN_TEST", "SUPPRESSED", "NO_DEVICE: no registered device")
