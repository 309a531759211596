"""Production says nothing the client did not send: no "Did you mean …?" suggestions,
no schema names in validation and coercion messages, no introspection."""

from __future__ import annotations

import json

import pytest

from tests.conftest import INTROSPECTION

PURCHASE = (
    'mutation($c: Channel!) { recordPurchase(input: { memberId: "x", externalId: "r-1", amount: "1", '
    'currency: "EUR", channel: $c }) { userErrors { code } } }'
)

CASES = {
    "a misspelt field": ("{ memberz }", {}, "memberz", ["members", "Query"]),
    "a misspelt argument": ("{ members(frist: 1) { edges { cursor } } }", {}, "frist", ["first", "Query"]),
    "a wrong enum literal": (
        PURCHASE.replace("$c", "STOR").replace("mutation(STOR: Channel!)", "mutation"),
        {},
        "STOR",
        ["STORE", "Channel"],
    ),
    "a wrong enum variable": (PURCHASE, {"c": "STOR"}, "STOR", ["STORE", "ONLINE"]),
    "a wrong non-ASCII enum variable": (PURCHASE, {"c": "STÖR"}, "STÖR", ["STORE"]),
    "a misspelt type": ("query($c: Chanel!) { __typename }", {}, "Chanel", ["Channel"]),
    "a field on the wrong type": ("{ me { balance } }", {}, "balance", ["Member", "wallets"]),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_production_errors_name_only_what_the_client_sent(production, name):
    document, variables, sent, hidden = CASES[name]
    result = (await production.post("/graphql", json={"query": document, "variables": variables})).json()
    assert result.get("data") is None and result["errors"], result
    text = json.dumps(result["errors"], ensure_ascii=False)
    assert sent in text  # the client is told what was wrong with what it sent
    assert "Did you mean" not in text
    for name_not_sent in hidden:
        assert f"'{name_not_sent}'" not in text, text


async def test_development_keeps_the_suggestions(gql):
    result = await gql("{ memberz }")
    assert "Did you mean 'members'?" in result["errors"][0]["message"]


async def test_production_still_refuses_introspection(production):
    result = (await production.post("/graphql", json={"query": INTROSPECTION})).json()
    assert result.get("data") is None
    assert "__schema" not in json.dumps(result.get("data"))
    assert "introspection" in result["errors"][0]["message"].lower()
