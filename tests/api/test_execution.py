"""The executor (api/execution.py): plain fields answered in place, and an operation's
selections collected once. What a client sees must not change: every answer follows
its own variables, aliases and fragments, however often the document ran before."""

from __future__ import annotations

from tests.conftest import enrolled

OPTIONAL = """
query Profile($withEmail: Boolean!, $skipCard: Boolean!) {
  me {
    id
    email @include(if: $withEmail)
    ...Card @skip(if: $skipCard)
  }
}
fragment Card on Member { memberNumber displayName }
"""

SHAPED = """
query Shaped {
  me {
    ...Names
    number: memberNumber
    again: memberNumber
    birthday
    preferences { timezone consent: pushMarketing }
  }
}
fragment Names on Member { id name: displayName email }
"""


async def test_a_cached_document_follows_each_request_s_variables(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com", displayName="Ana")
    answers = []
    for with_email, skip_card in [(True, False), (False, True), (True, True), (False, False)]:
        result = await gql(OPTIONAL, {"withEmail": with_email, "skipCard": skip_card}, token=ana.token)
        answers.append(result["data"]["me"])
    card = {"memberNumber": ana.number, "displayName": "Ana"}
    assert answers == [
        {"id": ana.id, "email": "ana@example.com", **card},
        {"id": ana.id},
        {"id": ana.id, "email": "ana@example.com"},
        {"id": ana.id, **card},
    ]


async def test_aliases_fragments_and_nulls_answer_alike_every_time(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com", displayName="Ana")
    bea = await enrolled(gql, tokens, "bea@example.com")
    for _ in range(3):  # the first run parses and collects; the others reuse both
        for member, name in ((ana, "Ana"), (bea, None)):
            result = await gql(SHAPED, token=member.token)
            assert "errors" not in result, result
            assert list(result["data"]["me"]) == ["id", "name", "email", "number", "again", "birthday", "preferences"]
            assert result["data"]["me"] == {
                "id": member.id,
                "name": name,
                "email": f"{name.lower() if name else 'bea'}@example.com",
                "number": member.number,
                "again": member.number,
                "birthday": None,
                "preferences": {"timezone": "UTC", "consent": False},
            }
