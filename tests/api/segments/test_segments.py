"""Segments through the API: the contract's `Segments` with sizes, `createSegment` with
precise errors, the audit log, and marketers only."""

from __future__ import annotations

import json

from tests.conftest import OPS, count, enrolled, error_codes, purchase

CREATE = """
mutation($input: CreateSegmentInput!) {
  createSegment(input: $input) {
    segment { id key name memberCount builtin }
    userErrors { code message field }
  }
}"""
CREATE_DRAW = "mutation($input: CreateDrawInput!) { createDraw(input: $input) { draw { id } userErrors { code } } }"
AUDIT = """query($after: String) { auditLog(first: 2, after: $after) {
  edges { node { actor action subjectId input at } } pageInfo { hasNextPage endCursor } } }"""


async def test_the_four_builtins_with_their_sizes(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    bob = await enrolled(gql, tokens, "bob@example.com")
    for n in range(2):
        await purchase(gql, tokens, bob, f"b{n}", "5.00")
    await purchase(gql, tokens, ana, "a0", "5.00")
    result = await gql(OPS["Segments"], token=tokens.marketer())
    sizes = {s["key"]: s["memberCount"] for s in result["data"]["segments"]}
    assert sizes == {"new": 1, "occasional": 1, "high_value": 0, "at_risk": 0}


async def test_create_a_segment_and_read_the_audit_log(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    await enrolled(gql, tokens, "bob@example.com")
    await purchase(gql, tokens, ana, "a0", "25.00", storeId="lyon-2")
    rules = [
        {"kind": "STORES_VISITED", "storeIds": ["lyon-2"], "windowDays": 30},
        {"kind": "HAS_DEVICE", "value": False},
    ]
    result = await gql(
        CREATE, {"input": {"key": "lyon", "name": "Lyon guests", "rules": rules}}, token=tokens.marketer("mia")
    )
    payload = result["data"]["createSegment"]
    assert payload["userErrors"] == []
    assert payload["segment"]["memberCount"] == 1 and payload["segment"]["builtin"] is False
    again = await gql(CREATE, {"input": {"key": "lyon", "name": "Again", "rules": rules}}, token=tokens.marketer())
    assert again["data"]["createSegment"]["userErrors"][0]["code"] == "ALREADY_EXISTS"
    reward = await gql(
        OPS["CreateReward"], {"name": "Coffee", "pointsCost": 100, "stock": 5}, token=tokens.marketer("leo")
    )
    assert reward["data"]["createReward"]["userErrors"] == []

    log = await gql(AUDIT, token=tokens.marketer())
    nodes = [e["node"] for e in log["data"]["auditLog"]["edges"]]
    assert [(n["actor"], n["action"]) for n in nodes] == [("leo", "createReward"), ("mia", "createSegment")]
    assert nodes[1]["subjectId"] == payload["segment"]["id"]
    assert json.loads(nodes[1]["input"])["rules"][0] == {
        "kind": "STORES_VISITED",
        "store_ids": ["lyon-2"],
        "window_days": 30,
    }
    assert json.loads(nodes[0]["input"])["pointsCost"] == 100
    assert log["data"]["auditLog"]["pageInfo"]["hasNextPage"] is False


async def test_an_invalid_rule_is_named_and_nothing_is_written(gql, tokens, database):
    rules = [{"kind": "TIER", "tiers": ["gold"]}, {"kind": "SPEND", "min": "10", "windowDays": 0}]
    result = await gql(
        CREATE, {"input": {"key": "gold_spenders", "name": "Gold", "rules": rules}}, token=tokens.marketer()
    )
    payload = result["data"]["createSegment"]
    assert payload["segment"] is None
    (error,) = payload["userErrors"]
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == "rules[1].windowDays"
    assert error["message"].startswith("rules[1] (SPEND): windowDays")
    assert await count(database, "segments WHERE NOT builtin") == 0
    assert await count(database, "audit_log") == 0


async def test_a_member_token_reaches_no_marketer_operation_and_writes_nothing(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    rules = [{"kind": "HAS_DEVICE"}]
    offer = {
        "title": "X",
        "description": "",
        "kind": "BONUS_POINTS",
        "value": "10",
        "audience": {"memberIds": [ana.id]},
        "storeIds": [],
        "validUntil": "2030-01-01T00:00:00Z",
    }
    calls = [
        (OPS["Segments"], None),
        (CREATE, {"input": {"key": "x", "name": "X", "rules": rules}}),
        (AUDIT, None),
        (OPS["CreateReward"], {"name": "Coffee", "pointsCost": 100, "stock": 5}),
        (OPS["CreateOffer"], {"input": offer}),
        (OPS["ProgramKpis"], {"from": "2026-01-01", "to": "2026-12-31"}),
        (
            CREATE_DRAW,
            {
                "input": {
                    "prize": "Tea",
                    "winners": 1,
                    "entryCost": 10,
                    "maxEntriesPerMember": 1,
                    "closesAt": "2030-01-01T00:00:00Z",
                }
            },
        ),
    ]
    for document, variables in calls:
        result = await gql(document, variables, token=ana.token)
        assert error_codes(result) == ["FORBIDDEN"], result
        assert result["data"] is None
    for table in ("segments", "audit_log", "rewards", "segment_members", "offers", "draws"):
        assert await count(database, table) == 0
