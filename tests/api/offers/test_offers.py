"""Offers through the contract's documents: targeting (a high_value offer is seen by a
high-value member, not by a new one), clipping once, a multiplier that changes the
points of the next purchase only, once, and explains itself on the ledger entry."""

from __future__ import annotations

import uuid
from datetime import timedelta

from api.relay import to_global_id
from domain import clock
from tests.conftest import OPS, count, enrolled, error_codes, ledger_sums, purchase

ENTRIES = """query($id: ID!) { node(id: $id) { ... on Member { wallets { entries(first: 1) { edges { node {
  amount description explanation { rule offers { offerId title kind points } } } } } } } } }"""


def until(days: int = 7) -> str:
    return (clock.now() + timedelta(days=days)).isoformat()


async def create_offer(gql, tokens, **fields) -> dict:
    data = {
        "title": "Double points",
        "description": "On your next visit",
        "kind": "POINTS_MULTIPLIER",
        "value": "2",
        "audience": {},
        "storeIds": [],
        "validUntil": until(),
        **fields,
    }
    result = await gql(OPS["CreateOffer"], {"input": data}, token=tokens.marketer("mia"))
    return result["data"]["createOffer"]


async def my_offers(gql, member) -> list[dict]:
    result = await gql(OPS["MyOffers"], {"first": 10}, token=member.token)
    return [e["node"] for e in result["data"]["me"]["offers"]["edges"]]


async def test_a_high_value_offer_is_seen_by_high_value_members_only(gql, tokens):
    regular = await enrolled(gql, tokens, "regular@example.com")
    for n in range(6):
        await purchase(gql, tokens, regular, f"r{n}", "40.00")  # 240 EUR over 6 visits
    newcomer = await enrolled(gql, tokens, "newcomer@example.com")
    segments = (await gql(OPS["Segments"], token=tokens.marketer()))["data"]["segments"]
    assert {s["key"]: s["memberCount"] for s in segments}["high_value"] == 1
    made = await create_offer(gql, tokens, kind="BONUS_POINTS", value="300", audience={"segmentKeys": ["high_value"]})
    assert made["userErrors"] == []
    seen = await my_offers(gql, regular)
    assert [(o["id"], o["title"], o["kind"], o["activated"]) for o in seen] == [
        (made["offer"]["id"], "Double points", "BONUS_POINTS", False)
    ]
    assert await my_offers(gql, newcomer) == []
    refused = await gql(OPS["ActivateOffer"], {"offerId": made["offer"]["id"]}, token=newcomer.token)
    assert refused["data"]["activateOffer"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_a_multiplier_doubles_the_next_purchase_only_once(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    made = await create_offer(gql, tokens, audience={"memberIds": [ana.id]})
    offer_id = made["offer"]["id"]
    before = await purchase(gql, tokens, ana, "p1", "5.00")  # not clipped yet: 50 points
    assert before["purchase"]["pointsEarned"] == 50
    for _ in range(2):  # clipping twice is clipping once
        clipped = await gql(OPS["ActivateOffer"], {"offerId": offer_id}, token=ana.token)
        assert clipped["data"]["activateOffer"] == {"offer": {"id": offer_id, "activated": True}, "userErrors": []}
    assert [o["activated"] for o in await my_offers(gql, ana)] == [True]

    doubled = await purchase(gql, tokens, ana, "p2", "5.00")
    assert doubled["purchase"]["pointsEarned"] == 100
    entry = (await gql(ENTRIES, {"id": ana.id}, token=tokens.staff()))["data"]["node"]["wallets"][0]["entries"]
    node = entry["edges"][0]["node"]
    assert node["amount"] == 100 and "offer: Double points" in node["description"]
    assert node["explanation"]["offers"] == [
        {"offerId": offer_id, "title": "Double points", "kind": "POINTS_MULTIPLIER", "points": 50}
    ]
    again = await purchase(gql, tokens, ana, "p2", "5.00")  # the same receipt re-sent: same answer
    assert again["purchase"]["pointsEarned"] == 100
    after = await purchase(gql, tokens, ana, "p3", "5.00")  # used: not again
    assert after["purchase"]["pointsEarned"] == 50
    assert await my_offers(gql, ana) == []  # used offers are not offered again
    reclip = await gql(OPS["ActivateOffer"], {"offerId": offer_id}, token=ana.token)
    assert reclip["data"]["activateOffer"]["userErrors"] == []
    assert (await purchase(gql, tokens, ana, "p4", "5.00"))["purchase"]["pointsEarned"] == 50
    balance, entries, lots = await ledger_sums(database, ana.uuid)
    assert balance == entries == lots == 100 + 50 + 100 + 50 + 50  # welcome + four purchases
    assert await count(database, "offer_activations WHERE used_at IS NOT NULL") == 1


async def test_a_store_bound_bonus_waits_for_its_store(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    made = await create_offer(
        gql, tokens, kind="BONUS_POINTS", value="25", audience={"memberIds": [ana.id]}, storeIds=["paris-marais"]
    )
    await gql(OPS["ActivateOffer"], {"offerId": made["offer"]["id"]}, token=ana.token)
    elsewhere = await purchase(gql, tokens, ana, "p1", "5.00", storeId="paris-1")
    assert elsewhere["purchase"]["pointsEarned"] == 50
    there = await purchase(gql, tokens, ana, "p2", "5.00", storeId="paris-marais")
    assert there["purchase"]["pointsEarned"] == 75


async def test_coupons_limits_and_validity(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    bob = await enrolled(gql, tokens, "bob@example.com")
    both = {"memberIds": [ana.id, bob.id]}
    coffee = await create_offer(gql, tokens, kind="FREE_ITEM", value="3.50", audience=both, usageLimit=1)
    offer_id = coffee["offer"]["id"]
    first = await gql(
        "mutation($id: ID!) { activateOffer(input: {offerId: $id}) { offer { couponCode } userErrors { code } } }",
        {"id": offer_id},
        token=ana.token,
    )
    assert len(first["data"]["activateOffer"]["offer"]["couponCode"]) == 14
    late = await gql(OPS["ActivateOffer"], {"offerId": offer_id}, token=bob.token)
    assert late["data"]["activateOffer"]["userErrors"][0]["code"] == "OUT_OF_STOCK"
    assert await my_offers(gql, bob) == []  # taken up: no longer offered
    short = await create_offer(gql, tokens, audience=both, validUntil=until(1))
    clock.advance(timedelta(days=1, seconds=1))
    ana.token = tokens.member(ana.uuid)  # the old one expired with the day
    assert [o["id"] for o in await my_offers(gql, ana)] == [offer_id]  # ended: gone; the clipped coupon stays
    gone = await gql(OPS["ActivateOffer"], {"offerId": short["offer"]["id"]}, token=ana.token)
    assert gone["data"]["activateOffer"]["userErrors"][0]["code"] == "EXPIRED"
    # the till accepts the code once
    code = first["data"]["activateOffer"]["offer"]["couponCode"]
    till = "mutation($c: String!) { redeemOfferCoupon(input: {code: $c}) { offer { title } userErrors { code } } }"
    used = await gql(till, {"c": code.lower()}, token=tokens.staff())
    assert used["data"]["redeemOfferCoupon"] == {"offer": {"title": "Double points"}, "userErrors": []}
    again = await gql(till, {"c": code}, token=tokens.staff())
    assert again["data"]["redeemOfferCoupon"]["userErrors"] == [{"code": "ALREADY_REDEEMED"}]
    assert await my_offers(gql, ana) == []  # used: no longer offered


async def test_create_offer_errors_name_the_field(gql, tokens, database):
    cases = [
        ({"audience": {}}, "audience"),
        ({"audience": {"segmentKeys": ["vip"]}}, "audience.segmentKeys[0]"),
        ({"audience": {"tierIds": ["platinum"]}}, "audience.tierIds[0]"),
        ({"audience": {"segmentKeys": ["new"]}, "value": "1"}, "value"),
        ({"audience": {"segmentKeys": ["new"]}, "storeIds": ["atlantis"]}, "storeIds[0]"),
        ({"audience": {"segmentKeys": ["new"]}, "validUntil": until(-1)}, "validUntil"),
    ]
    for fields, field in cases:
        made = await create_offer(gql, tokens, **fields)
        assert made["offer"] is None
        assert [(e["code"], e["field"]) for e in made["userErrors"]] == [("INVALID_INPUT", field)], fields
    assert await count(database, "offers") == 0
    assert await count(database, "audit_log") == 0
    made = await create_offer(gql, tokens, audience={"tierIds": ["gold"], "segmentKeys": ["new"]})
    log = await gql("{ auditLog(first: 5) { edges { node { actor action subjectId } } } }", token=tokens.marketer())
    assert [e["node"] for e in log["data"]["auditLog"]["edges"]] == [
        {"actor": "mia", "action": "createOffer", "subjectId": made["offer"]["id"]}
    ]


async def test_an_audience_naming_a_member_who_does_not_exist_is_refused(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    gone = to_global_id("Member", uuid.uuid4())
    made = await create_offer(gql, tokens, audience={"memberIds": [ana.id, gone]})
    assert made["offer"] is None
    assert [(e["code"], e["field"]) for e in made["userErrors"]] == [("NOT_FOUND", "audience.memberIds[1]")]
    assert await count(database, "offers") == 0
    not_a_member = await create_offer(gql, tokens, audience={"memberIds": [to_global_id("Tier", "gold")]})
    assert [(e["code"], e["field"]) for e in not_a_member["userErrors"]] == [("INVALID_INPUT", "audience.memberIds[0]")]


async def test_a_member_token_cannot_create_offers(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    data = {"title": "Free", "kind": "BONUS_POINTS", "value": "1000", "audience": {"memberIds": [ana.id]}}
    result = await gql(OPS["CreateOffer"], {"input": {**data, "validUntil": until()}}, token=ana.token)
    assert error_codes(result) == ["FORBIDDEN"]
    assert await count(database, "offers") == 0 and await count(database, "audit_log") == 0
