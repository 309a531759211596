"""A member sees through `node(id:)` exactly what the lists show them: a reward of a
higher tier, or one taken out of the catalogue, is null, as an ID that does not exist."""

from __future__ import annotations

import pytest

from domain.rewards.models import Reward as RewardRow
from tests.conftest import enroll, member_uuid

CREATE = "mutation($input: CreateRewardInput!) { createReward(input: $input) { reward { id } userErrors { code } } }"
REWARD = "query($id: ID!) { node(id: $id) { id ... on Reward { name available } } }"
LIST = "{ rewards(first: 100) { edges { node { id name available } } } }"


@pytest.fixture
async def catalogue(gql, tokens) -> dict[str, str]:
    """Reward ids by name: one for everyone, one for Gold only, one withdrawn."""
    ids = {}
    for name, extra in (("Coffee", {}), ("Lounge", {"minTier": "gold"}), ("Old mug", {})):
        result = await gql(CREATE, {"input": {"name": name, "pointsCost": 10, **extra}}, token=tokens.marketer())
        ids[name] = result["data"]["createReward"]["reward"]["id"]
    await RewardRow.filter(name="Old mug").update(active=False)
    return ids


async def test_a_bronze_member_sees_by_id_only_what_the_list_shows(gql, tokens, catalogue):
    bronze = await enroll(gql, tokens, "ana@example.com")
    token = tokens.member(member_uuid(bronze["id"]))
    listed = await gql(LIST, token=token)
    assert [e["node"]["name"] for e in listed["data"]["rewards"]["edges"]] == ["Coffee"]

    for name, reward_id in catalogue.items():
        fetched = await gql(REWARD, {"id": reward_id}, token=token)
        if name == "Coffee":
            assert fetched == {"data": {"node": {"id": reward_id, "name": "Coffee", "available": True}}}
        else:  # as if it did not exist: no name, no `available: true`
            assert fetched == {"data": {"node": None}}, name


async def test_a_gold_member_sees_the_gold_reward_both_ways(gql, tokens, catalogue):
    from domain.members.models import Member

    gold = await enroll(gql, tokens, "gil@example.com")
    await Member.filter(id=member_uuid(gold["id"])).update(tier_key="gold")
    token = tokens.member(member_uuid(gold["id"]))
    listed = await gql(LIST, token=token)
    assert {e["node"]["name"] for e in listed["data"]["rewards"]["edges"]} == {"Coffee", "Lounge"}
    fetched = await gql(REWARD, {"id": catalogue["Lounge"]}, token=token)
    assert fetched["data"]["node"] == {"id": catalogue["Lounge"], "name": "Lounge", "available": True}
    assert (await gql(REWARD, {"id": catalogue["Old mug"]}, token=token))["data"]["node"] is None


@pytest.mark.parametrize("role", ["staff", "marketer"])
async def test_staff_and_marketers_fetch_every_reward_by_id(gql, tokens, catalogue, role):
    token = tokens.staff() if role == "staff" else tokens.marketer()
    for name, reward_id in catalogue.items():
        fetched = await gql(REWARD, {"id": reward_id}, token=token)
        assert fetched["data"]["node"] == {"id": reward_id, "name": name, "available": name != "Old mug"}


async def test_a_deleted_member_sees_no_reward_by_id(gql, tokens, database, catalogue):
    from domain import db

    gone = await enroll(gql, tokens, "gone@example.com")
    token = tokens.member(member_uuid(gone["id"]))
    conn = await db.raw_connection(database.credentials)
    try:
        await conn.execute("DELETE FROM members WHERE id = $1", member_uuid(gone["id"]))
    finally:
        await conn.close()
    assert await gql(REWARD, {"id": catalogue["Coffee"]}, token=token) == {"data": {"node": None}}
