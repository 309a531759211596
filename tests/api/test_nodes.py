"""Relay: every type that implements Node comes back from `node(id:)` for whoever may
see it, and as null for anyone else. The cases come from the schema's Node
implementers, so a new Node type without a case here fails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from tortoise import connections

from api.schema import build_schema
from domain import clock
from domain.notifications import service as notifications
from tests.conftest import OPS, Member, enrolled, error_codes, purchase

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
SCHEMA = build_schema()._schema
IMPLEMENTERS = sorted(t.name for t in SCHEMA.get_implementations(SCHEMA.type_map["Node"]).objects)

# Who besides the owner sees each type (the owner always does, another member never
# does, except for public types that every signed-in caller sees).
PUBLIC = {"owner", "other", "staff", "marketer"}
LISTED = {"owner", "staff", "marketer"}  # staff and marketers list members and their wallets, history, inbox
VISIBLE = {
    "Member": LISTED,
    "Wallet": LISTED,
    "CashbackWallet": LISTED,
    "LedgerEntry": LISTED,
    "CashbackEntry": LISTED,
    "Notification": LISTED,
    "Purchase": {"owner", "staff"},  # the till's records; marketers list no purchases
    "Coupon": {"owner", "staff"},  # the till redeems them
    "Device": {"owner"},  # only `me { devices }` lists them
    "Tier": PUBLIC,
    "Reward": PUBLIC,
    "Store": PUBLIC,
    "Segment": {"marketer"},  # the marketers' view of the members
    "Offer": {"owner", "marketer"},  # a member sees the offers that target them
    "Draw": PUBLIC,  # members see the draws they may enter, and the results
    "Campaign": {"marketer"},  # the marketers' tools alone
}

OWNED = """
{ me {
    id
    tier { current { id } }
    wallets { id entries(first: 1) { edges { node { id } } } }
    cashbackWallet { id entries(first: 1) { edges { node { id } } } }
    notifications(first: 1) { edges { node { id } } }
    devices { id platform }
} }"""


@dataclass
class World:
    ana: Member
    tokens: dict[str, str]  # role -> access token
    ids: dict[str, str]  # Node type -> an id of that type, owned by Ana where it can be owned


async def _world(gql, tokens) -> World:
    ana = await enrolled(gql, tokens, "ana@example.com")
    bo = await enrolled(gql, tokens, "bo@example.com")
    bought = await purchase(gql, tokens, ana, "N-1", "20.00")
    reward = await gql(OPS["CreateReward"], {"name": "Tea", "pointsCost": 50}, token=tokens.marketer())
    reward_id = reward["data"]["createReward"]["reward"]["id"]
    redeemed = await gql(OPS["RedeemReward"], {"rewardId": reward_id, "idempotencyKey": "n-1"}, token=ana.token)
    device = await gql(OPS["RegisterDevice"], {"fcmToken": "token-ana-phone-1", "platform": "IOS"}, token=ana.token)
    store = await gql(
        'mutation { addStore(input: {key: "lyon-1", name: "Lyon", latitude: 45.76, longitude: 4.83}) '
        "{ store { id } userErrors { code } } }",
        token=tokens.marketer(),
    )
    draw = await gql(
        'mutation($at: DateTime!) { createDraw(input: {prize: "Bike", winners: 1, entryCost: 10, '
        "maxEntriesPerMember: 1, closesAt: $at}) { draw { id } } }",
        {"at": (clock.now() + timedelta(days=1)).isoformat()},
        token=tokens.marketer(),
    )
    campaign = await gql(
        OPS["CreateCampaign"],
        {"input": {"name": "Spring", "audience": {"memberIds": [ana.id]}, "message": {"title": "Hi", "body": "Tea?"}}},
        token=tokens.marketer(),
    )
    # A notification that was sent, as the inbox lists it (sending is the worker's, tested apart).
    await notifications.enqueue(
        ana.uuid, kind="EXPIRY", title="Soon", body="Points expire", dedupe_key="n-1", due_at=clock.now()
    )
    await connections.get("default").execute_query("UPDATE notifications SET state = 'SENT', sent_at = now()")
    segments = (await gql(OPS["Segments"], token=tokens.marketer()))["data"]["segments"]
    offer = await gql(
        OPS["CreateOffer"],
        {
            "input": {
                "title": "Bonus",
                "kind": "BONUS_POINTS",
                "value": "10",
                "audience": {"memberIds": [ana.id]},
                "storeIds": [],
                "description": "",
                "validUntil": (clock.now() + timedelta(days=1)).isoformat(),
            }
        },
        token=tokens.marketer(),
    )
    me = (await gql(OWNED, token=ana.token))["data"]["me"]
    (wallet,) = me["wallets"]
    ids = {
        "Member": me["id"],
        "Tier": me["tier"]["current"]["id"],
        "Wallet": wallet["id"],
        "LedgerEntry": wallet["entries"]["edges"][0]["node"]["id"],
        "CashbackWallet": me["cashbackWallet"]["id"],
        "CashbackEntry": me["cashbackWallet"]["entries"]["edges"][0]["node"]["id"],
        "Notification": me["notifications"]["edges"][0]["node"]["id"],
        "Device": device["data"]["registerDevice"]["device"]["id"],
        "Purchase": bought["purchase"]["id"],
        "Reward": reward_id,
        "Coupon": redeemed["data"]["redeemReward"]["coupon"]["id"],
        "Store": store["data"]["addStore"]["store"]["id"],
        "Segment": segments[0]["id"],
        "Offer": offer["data"]["createOffer"]["offer"]["id"],
        "Draw": draw["data"]["createDraw"]["draw"]["id"],
        "Campaign": campaign["data"]["createCampaign"]["campaign"]["id"],
    }
    assert me["devices"] == [{"id": ids["Device"], "platform": "IOS"}]
    roles = {"owner": ana.token, "other": bo.token, "staff": tokens.staff(), "marketer": tokens.marketer()}
    return World(ana, roles, ids)


def test_every_node_type_has_a_case():
    assert set(IMPLEMENTERS) == set(VISIBLE), "give each Node type its visibility here and a fixture in _world"


@pytest.mark.parametrize("type_name", IMPLEMENTERS)
async def test_node_resolves_for_whoever_may_see_it(cashback_gql, tokens, type_name):
    assert type_name in VISIBLE, f"{type_name} implements Node but has no visibility case"
    world = await _world(cashback_gql, tokens)
    node_id = world.ids[type_name]
    for role, token in world.tokens.items():
        result = await cashback_gql(NODE, {"id": node_id}, token=token)
        assert "errors" not in result, (role, result)
        expected = {"__typename": type_name, "id": node_id} if role in VISIBLE[type_name] else None
        assert result["data"]["node"] == expected, (type_name, role)


async def test_an_id_of_one_kind_is_not_found_as_another(cashback_gql, tokens):
    from api.relay import from_global_id, to_global_id

    world = await _world(cashback_gql, tokens)
    swaps = {"LedgerEntry": "CashbackEntry", "CashbackEntry": "LedgerEntry", "Wallet": "CashbackWallet"}
    for real, posed in swaps.items():
        _, key = from_global_id(world.ids[real])
        result = await cashback_gql(NODE, {"id": to_global_id(posed, key)}, token=world.tokens["owner"])
        assert result["data"]["node"] is None, (real, posed)
    for junk in (to_global_id("LedgerEntry", "99999999999999999999"), to_global_id("Store", "nowhere")):
        assert (await cashback_gql(NODE, {"id": junk}, token=world.tokens["owner"]))["data"]["node"] is None


async def test_devices_are_the_members_own(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    bo = await enrolled(gql, tokens, "bo@example.com")
    await gql(OPS["RegisterDevice"], {"fcmToken": "token-ana-phone-1", "platform": "IOS"}, token=ana.token)
    clock.advance(timedelta(seconds=5))
    await gql(OPS["RegisterDevice"], {"fcmToken": "token-ana-web-22", "platform": "WEB"}, token=ana.token)
    await gql(OPS["RegisterDevice"], {"fcmToken": "token-bo-phone-3", "platform": "ANDROID"}, token=bo.token)
    mine = (await gql("{ me { devices { platform } } }", token=ana.token))["data"]["me"]["devices"]
    assert mine == [{"platform": "WEB"}, {"platform": "IOS"}]  # most recently seen first, Bo's not among them
    seen_by_staff = await gql(
        "query($id: ID!) { node(id: $id) { ... on Member { devices { id } } } }", {"id": ana.id}, token=tokens.staff()
    )
    assert error_codes(seen_by_staff) == ["FORBIDDEN"]


async def test_a_reward_above_the_members_tier_is_not_theirs_to_see(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")  # bronze
    created = await gql(
        'mutation { createReward(input: {name: "Lounge", pointsCost: 10, minTier: "gold"}) '
        "{ reward { id } userErrors { code } } }",
        token=tokens.marketer(),
    )
    reward_id = created["data"]["createReward"]["reward"]["id"]
    listed = (await gql(OPS["Rewards"], {"first": 10}, token=ana.token))["data"]["rewards"]["edges"]
    assert listed == []  # as the catalogue shows it to her...
    assert (await gql(NODE, {"id": reward_id}, token=ana.token))["data"]["node"] is None  # ...so does node
    assert (await gql(NODE, {"id": reward_id}, token=tokens.staff()))["data"]["node"]["id"] == reward_id
