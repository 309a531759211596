"""Devices, location nudges and the inbox through the API, as the app sends them."""

from __future__ import annotations

from datetime import timedelta

from tortoise import connections

from domain import clock
from notifications.dispatch import dispatch_due
from tests.conftest import DOCUMENTS, enroll, error_codes, member_uuid

OPS = {name: text for name, (_, text) in DOCUMENTS.items()}
MARAIS = (48.8591, 2.3621)  # a few metres from the demo program's Marais store
FAR = (43.2965, 5.3698)  # Marseille


async def signed_in(gql, tokens, email: str, *, location: bool, token: str) -> str:
    member = await enroll(gql, tokens, email)
    access = tokens.member(member_uuid(member["id"]))
    prefs = await gql(
        OPS["UpdatePreferences"], {"push": True, "location": location, "timezone": "Europe/Paris"}, token=access
    )
    assert prefs["data"]["updatePreferences"]["userErrors"] == []
    device = await gql(OPS["RegisterDevice"], {"fcmToken": token, "platform": "IOS"}, token=access)
    assert device["data"]["registerDevice"]["userErrors"] == []
    assert device["data"]["registerDevice"]["device"]["platform"] == "IOS"
    return access


async def test_a_device_token_belongs_to_one_member(gql, tokens):
    ana = await signed_in(gql, tokens, "ana@example.com", location=False, token="token-shared-phone")
    bo = await signed_in(gql, tokens, "bo@example.com", location=False, token="token-shared-phone")
    rows = await connections.get("default").execute_query_dict("SELECT member_id FROM devices")
    assert len(rows) == 1  # moved to Bo, not copied
    bad = await gql(OPS["RegisterDevice"], {"fcmToken": "short", "platform": "ANDROID"}, token=ana)
    assert [(e["code"], e["field"]) for e in bad["data"]["registerDevice"]["userErrors"]] == [
        ("INVALID_INPUT", "fcmToken")
    ]
    staff = await gql(OPS["RegisterDevice"], {"fcmToken": "token-x-123456", "platform": "IOS"}, token=tokens.staff())
    assert error_codes(staff) == ["FORBIDDEN"]
    gone = await gql('mutation { unregisterDevice(input: {fcmToken: "token-shared-phone"}) { removed } }', token=bo)
    assert gone["data"]["unregisterDevice"]["removed"] is True


async def test_walking_past_a_store_nudges_once(gql, tokens, app, fcm, sender):
    program = app.state.services.program
    clock.advance(_to_paris_noon())
    ana = await signed_in(gql, tokens, "ana@example.com", location=True, token="token-ana-phone")

    near = await gql(OPS["ReportLocation"], {"latitude": MARAIS[0], "longitude": MARAIS[1]}, token=ana)
    stores = near["data"]["reportLocation"]["nearbyStores"]
    assert [s["name"] for s in stores] == ["Café Aurora Marais"] and stores[0]["distanceMeters"] < 50
    assert (await dispatch_due(program, sender)).sent == 1
    (push,) = fcm.to("token-ana-phone")
    assert push["notification"]["title"] == "Café Aurora Marais"

    clock.advance(timedelta(minutes=10))
    again = await gql(OPS["ReportLocation"], {"latitude": MARAIS[0], "longitude": MARAIS[1]}, token=ana)
    assert again["data"]["reportLocation"]["nearbyStores"]  # still near
    assert (await dispatch_due(program, sender)).claimed == 0  # but no second nudge
    far = await gql(OPS["ReportLocation"], {"latitude": FAR[0], "longitude": FAR[1]}, token=ana)
    assert far["data"]["reportLocation"]["nearbyStores"] == []
    assert len(fcm.to("token-ana-phone")) == 1

    # the inbox shows it; the app marks it opened
    inbox = await gql(OPS["Notifications"], {"first": 10}, token=ana)
    (edge,) = inbox["data"]["me"]["notifications"]["edges"]
    assert edge["node"]["kind"] == "LOCATION" and edge["node"]["readAt"] is None
    opened = await gql(
        "mutation($id: ID!) { markNotification(input: {notificationId: $id, opened: true})"
        " { notification { readAt openedAt } userErrors { code } } }",
        {"id": edge["node"]["id"]},
        token=ana,
    )
    assert opened["data"]["markNotification"]["notification"]["openedAt"] is not None


async def test_no_location_consent_no_nudge_and_no_trace(gql, tokens, app, fcm, sender):
    clock.advance(_to_paris_noon())
    bo = await signed_in(gql, tokens, "bo@example.com", location=False, token="token-bo-phone")
    near = await gql(OPS["ReportLocation"], {"latitude": MARAIS[0], "longitude": MARAIS[1]}, token=bo)
    assert near["data"]["reportLocation"]["nearbyStores"]
    assert await connections.get("default").execute_query_dict("SELECT 1 FROM notifications") == []
    assert (await dispatch_due(app.state.services.program, sender)).claimed == 0
    bad = await gql(OPS["ReportLocation"], {"latitude": 91.0, "longitude": 0.0}, token=bo)
    assert [e["field"] for e in bad["data"]["reportLocation"]["userErrors"]] == ["latitude"]


async def test_marketers_add_stores_that_nudge(gql, tokens, app, fcm, sender):
    clock.advance(_to_paris_noon())
    added = await gql(
        "mutation($i: AddStoreInput!) { addStore(input: $i) { store { id key } userErrors { code field } } }",
        {
            "i": {
                "key": "lyon-1",
                "name": "Aurora Lyon",
                "latitude": 45.764,
                "longitude": 4.8357,
                "radiusMeters": 100,
                "message": "Fresh croissants!",
            }
        },
        token=tokens.marketer(),
    )
    assert added["data"]["addStore"]["userErrors"] == []
    ana = await signed_in(gql, tokens, "ana@example.com", location=True, token="token-ana-lyon")
    await gql(OPS["ReportLocation"], {"latitude": 45.7641, "longitude": 4.8357}, token=ana)
    assert (await dispatch_due(app.state.services.program, sender)).sent == 1
    assert fcm.to("token-ana-lyon")[0]["notification"]["body"] == "Fresh croissants!"


def _to_paris_noon() -> timedelta:
    """From now to the next noon in Paris: outside quiet hours whenever the tests run."""
    from zoneinfo import ZoneInfo

    now = clock.now().astimezone(ZoneInfo("Europe/Paris"))
    noon = now.replace(hour=12, minute=0, second=0, microsecond=0)
    if noon <= now:
        noon += timedelta(days=1)
    return noon - now
