"""A location nudge names the best offer the member can use at that store now (offers
bound to the store first) and links to it; the push carries the offer's ID."""

from __future__ import annotations

import json
from datetime import timedelta

from tortoise import connections

from domain import clock
from tests.conftest import OPS, enrolled

MARAIS = (48.8591, 2.3621)  # a few metres from the demo program's Marais store


async def offer(gql, tokens, title: str, days: int, audience: dict, stores: list[str]) -> str:
    data = {
        "title": title,
        "description": "",
        "kind": "BONUS_POINTS",
        "value": "20",
        "audience": audience,
        "storeIds": stores,
        "validUntil": (clock.now() + timedelta(days=days)).isoformat(),
    }
    made = await gql(OPS["CreateOffer"], {"input": data}, token=tokens.marketer())
    assert made["data"]["createOffer"]["userErrors"] == [], made
    return made["data"]["createOffer"]["offer"]["id"]


async def walk_past_marais(gql, member) -> dict:
    prefs = {"push": True, "location": True, "timezone": "Europe/Paris"}
    assert (await gql(OPS["UpdatePreferences"], prefs, token=member.token))["data"]["updatePreferences"][
        "userErrors"
    ] == []
    near = await gql(OPS["ReportLocation"], {"latitude": MARAIS[0], "longitude": MARAIS[1]}, token=member.token)
    assert near["data"]["reportLocation"]["nearbyStores"]
    rows = await connections.get("default").execute_query_dict(
        "SELECT body, data FROM notifications WHERE member_id = $1 AND kind = 'LOCATION'", [member.uuid]
    )
    (row,) = rows
    return {"body": row["body"], "data": json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]}


async def test_the_nudge_names_the_store_bound_offer_first(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    me = {"memberIds": [ana.id]}
    await offer(gql, tokens, "Anywhere bonus", 1, me, [])  # ends sooner, but not bound to this store
    await offer(gql, tokens, "Gare de Lyon bonus", 1, me, ["paris-gare-de-lyon"])  # not usable here
    marais = await offer(gql, tokens, "Marais bonus", 5, me, ["paris-marais"])
    nudge = await walk_past_marais(gql, ana)
    assert nudge["data"] == {"store": "paris-marais", "offerId": marais}
    assert nudge["body"].endswith("Your offer here: Marais bonus.")


async def test_without_a_store_bound_offer_the_soonest_ending_one(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    later = await offer(gql, tokens, "Later", 9, {"memberIds": [ana.id]}, [])
    sooner = await offer(gql, tokens, "Sooner", 2, {"memberIds": [ana.id]}, [])
    assert later != sooner
    nudge = await walk_past_marais(gql, ana)
    assert nudge["data"] == {"store": "paris-marais", "offerId": sooner}


async def test_no_offer_for_the_member_no_offer_in_the_nudge(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    bob = await enrolled(gql, tokens, "bob@example.com")
    await offer(gql, tokens, "Bob's", 5, {"memberIds": [bob.id]}, ["paris-marais"])
    nudge = await walk_past_marais(gql, ana)
    assert nudge["data"] == {"store": "paris-marais"}
    assert "offer" not in nudge["body"]
