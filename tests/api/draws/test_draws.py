"""Draws over GraphQL: a marketer opens one, members see it and enter from the app, the
worker's job draws it, and anyone re-runs the draw from what the API publishes."""

from __future__ import annotations

import random
from datetime import timedelta

from domain import clock
from domain.draws import service as draws
from tests.conftest import WELCOME, count, enrolled, error_codes

DRAW_FIELDS = (
    "id prize winnerCount entryCost maxEntriesPerMember closesAt status entryCount myEntries seed "
    "entryNumbers winningEntries"
)
CREATE = (
    "mutation($input: CreateDrawInput!) { createDraw(input: $input) { draw { "
    + DRAW_FIELDS
    + " } userErrors { code field } } }"
)
ENTER = (
    "mutation($drawId: ID!, $key: String!) { enterDraw(input: {drawId: $drawId, idempotencyKey: $key}) "
    "{ draw { id myEntries entryCount } wallet { balance } userErrors { code field } } }"
)
CANCEL = "mutation($drawId: ID!) { cancelDraw(input: {drawId: $drawId}) { draw { id status } userErrors { code } } }"
LIST = "{ draws(first: 10) { edges { node { id prize myEntries entryCount } } } }"
NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on Draw {{ {DRAW_FIELDS} }} }} }}"


def draw_input(**kw) -> dict:
    values = {
        "prize": "Coffee for a year",
        "winners": 2,
        "entryCost": 20,
        "maxEntriesPerMember": 3,
        "closesAt": (clock.now() + timedelta(days=3)).isoformat(),
    }
    return {**values, **kw}


async def create(gql, tokens, **kw) -> dict:
    result = await gql(CREATE, {"input": draw_input(**kw)}, token=tokens.marketer())
    return result["data"]["createDraw"]


async def test_a_draw_from_creation_to_winners_anyone_can_check(app, gql, tokens, database):
    created = await create(gql, tokens)
    assert created["userErrors"] == []
    draw = created["draw"]
    assert (draw["status"], draw["seed"], draw["entryNumbers"], draw["winningEntries"]) == ("OPEN", None, [], [])

    ana = await enrolled(gql, tokens, "ana@example.com")
    ben = await enrolled(gql, tokens, "ben@example.com")
    first = await gql(ENTER, {"drawId": draw["id"], "key": "a-1"}, token=ana.token)
    assert first["data"]["enterDraw"] == {
        "draw": {"id": draw["id"], "myEntries": 1, "entryCount": 1},
        "wallet": {"balance": WELCOME - 20},
        "userErrors": [],
    }
    again = await gql(ENTER, {"drawId": draw["id"], "key": "a-1"}, token=ana.token)  # a retry: the same entry
    assert again["data"]["enterDraw"]["draw"]["myEntries"] == 1
    for key in ("a-2", "a-3"):
        assert (await gql(ENTER, {"drawId": draw["id"], "key": key}, token=ana.token))["data"]["enterDraw"][
            "userErrors"
        ] == []
    capped = await gql(ENTER, {"drawId": draw["id"], "key": "a-4"}, token=ana.token)
    assert capped["data"]["enterDraw"]["userErrors"] == [{"code": "NOT_ELIGIBLE", "field": "drawId"}]
    await gql(ENTER, {"drawId": draw["id"], "key": "b-1"}, token=ben.token)

    listed = await gql(LIST, token=ben.token)
    assert [e["node"] for e in listed["data"]["draws"]["edges"]] == [
        {"id": draw["id"], "prize": "Coffee for a year", "myEntries": 1, "entryCount": 4}
    ]

    clock.advance(timedelta(days=3))
    late = await gql(ENTER, {"drawId": draw["id"], "key": "b-2"}, token=tokens.member(ben.uuid))
    assert late["data"]["enterDraw"]["userErrors"] == [{"code": "EXPIRED", "field": "drawId"}]
    assert await draws.draw_due(app.state.services.program) == 1

    shown = (await gql(NODE, {"id": draw["id"]}, token=tokens.member(ben.uuid)))["data"]["node"]
    assert shown["status"] == "DRAWN" and shown["seed"]
    assert len(shown["entryNumbers"]) == 4
    # What the README tells anyone to run, on what the API published:
    rerun = random.Random(shown["seed"]).sample(sorted(shown["entryNumbers"]), shown["winnerCount"])
    assert shown["winningEntries"] == sorted(rerun)
    assert await count(database, "coupons") == 2  # one per winning entry
    assert (await gql(LIST, token=tokens.member(ben.uuid)))["data"]["draws"]["edges"] == []  # no longer open


async def test_bad_draws_and_missing_ones_are_told_precisely(gql, tokens):
    past = await create(gql, tokens, closesAt=(clock.now() - timedelta(minutes=1)).isoformat())
    assert past["userErrors"] == [{"code": "INVALID_INPUT", "field": "closesAt"}]
    none = await create(gql, tokens, winners=0)
    assert none["userErrors"] == [{"code": "INVALID_INPUT", "field": "winners"}]
    ana = await enrolled(gql, tokens, "ana@example.com")
    missing = "RHJhdzowMDAwMDAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDA"  # Draw:00000000-0000-4000-8000-...
    entered = await gql(ENTER, {"drawId": missing, "key": "k"}, token=ana.token)
    assert entered["data"]["enterDraw"]["userErrors"] == [{"code": "NOT_FOUND", "field": "drawId"}]
    poor = await create(gql, tokens, entryCost=WELCOME + 1)
    broke = await gql(ENTER, {"drawId": poor["draw"]["id"], "key": "k"}, token=ana.token)
    assert broke["data"]["enterDraw"]["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "drawId"}]


async def test_a_cancelled_draw_gives_the_points_back(gql, tokens):
    draw = (await create(gql, tokens))["draw"]
    ana = await enrolled(gql, tokens, "ana@example.com")
    await gql(ENTER, {"drawId": draw["id"], "key": "a-1"}, token=ana.token)
    for _ in range(2):
        cancelled = await gql(CANCEL, {"drawId": draw["id"]}, token=tokens.marketer())
        assert cancelled["data"]["cancelDraw"] == {"draw": {"id": draw["id"], "status": "CANCELLED"}, "userErrors": []}
    me = await gql("{ me { wallets { balance } } }", token=ana.token)
    assert me["data"]["me"]["wallets"] == [{"balance": WELCOME}]


async def test_members_cannot_create_or_cancel_draws_and_nothing_is_written(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    result = await gql(CREATE, {"input": draw_input()}, token=ana.token)
    assert error_codes(result) == ["FORBIDDEN"] and result["data"] is None
    assert await count(database, "draws") == 0
    draw = (await create(gql, tokens))["draw"]
    result = await gql(CANCEL, {"drawId": draw["id"]}, token=ana.token)
    assert error_codes(result) == ["FORBIDDEN"]
    shown = (await gql(NODE, {"id": draw["id"]}, token=ana.token))["data"]["node"]
    assert shown["status"] == "OPEN"
    # and a marketer does not enter draws
    entered = await gql(ENTER, {"drawId": draw["id"], "key": "k"}, token=tokens.marketer())
    assert error_codes(entered) == ["FORBIDDEN"]
    assert await count(database, "draw_entries") == 0


async def test_a_marketer_lists_every_draw_with_its_status_and_the_till_may_not(gql, tokens):
    soon = (await create(gql, tokens, prize="Soon", closesAt=(clock.now() + timedelta(days=1)).isoformat()))["draw"]
    later = (await create(gql, tokens, prize="Later"))["draw"]
    await gql(CANCEL, {"drawId": soon["id"]}, token=tokens.marketer())
    listing = "{ draws(first: 1) { edges { node { prize status myEntries } } pageInfo { hasNextPage endCursor } } }"
    first = (await gql(listing, token=tokens.marketer()))["data"]["draws"]
    assert [e["node"] for e in first["edges"]] == [{"prize": "Soon", "status": "CANCELLED", "myEntries": 0}]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        "query($after: String) { draws(first: 5, after: $after) { edges { node { prize status } } } }",
        {"after": first["pageInfo"]["endCursor"]},
        token=tokens.marketer(),
    )
    assert [e["node"] for e in rest["data"]["draws"]["edges"]] == [{"prize": "Later", "status": "OPEN"}]
    # a member still sees only the draws taking entries
    ana = await enrolled(gql, tokens, "ana@example.com")
    seen = (await gql(LIST, token=ana.token))["data"]["draws"]["edges"]
    assert [e["node"]["id"] for e in seen] == [later["id"]]
    assert error_codes(await gql(LIST, token=tokens.staff())) == ["FORBIDDEN"]
