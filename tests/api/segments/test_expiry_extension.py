"""`extendPointsExpiry` through the API: a marketer moves a segment's or members' points
to a date (an EXTEND entry, an audit entry, the app's `expiringSoon` follows); a member
token is FORBIDDEN and writes nothing; bad input is a precise user error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import count, enrolled, error_codes, purchase

EXTEND = """
mutation($input: ExtendPointsExpiryInput!) {
  extendPointsExpiry(input: $input) { membersExtended userErrors { code field } }
}"""
EXPIRING = """{ me { wallets { kind balance expiringSoon { amount expiresAt }
  entries(first: 1) { edges { node { kind amount balanceAfter description } } } } } }"""


def until(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat()


async def test_a_marketer_extends_members_points_and_the_app_sees_the_new_date(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")  # the demo's welcome points
    bob = await enrolled(gql, tokens, "bob@example.com")
    date = until(800)  # later than the demo's 12 months
    result = await gql(EXTEND, {"input": {"memberIds": [ana.id], "until": date}}, token=tokens.marketer("mia"))
    assert result["data"]["extendPointsExpiry"] == {"membersExtended": 1, "userErrors": []}
    (wallet,) = (await gql(EXPIRING, token=ana.token))["data"]["me"]["wallets"]
    assert [datetime.fromisoformat(e["expiresAt"]) for e in wallet["expiringSoon"]] == [datetime.fromisoformat(date)]
    (entry,) = [e["node"] for e in wallet["entries"]["edges"]]
    assert (entry["kind"], entry["amount"], entry["balanceAfter"]) == ("EXTEND", 0, wallet["balance"])
    (other,) = (await gql(EXPIRING, token=bob.token))["data"]["me"]["wallets"]
    assert datetime.fromisoformat(other["expiringSoon"][0]["expiresAt"]) < datetime.fromisoformat(date)
    assert await count(database, "audit_log") == 1

    # a first purchase each: their segments are recomputed, both still `new`
    await purchase(gql, tokens, ana, "a1", "5.00")
    await purchase(gql, tokens, bob, "b1", "5.00")
    later = until(900)
    segment = await gql(EXTEND, {"input": {"segmentKey": "new", "until": later}}, token=tokens.marketer())
    assert segment["data"]["extendPointsExpiry"] == {"membersExtended": 2, "userErrors": []}
    for member in (ana, bob):
        (wallet,) = (await gql(EXPIRING, token=member.token))["data"]["me"]["wallets"]
        assert [datetime.fromisoformat(e["expiresAt"]) for e in wallet["expiringSoon"]] == [
            datetime.fromisoformat(later)
        ]


async def test_bad_extensions_are_user_errors_and_write_nothing(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    cases = [
        ({"until": until(30)}, "INVALID_INPUT", "segmentKey"),
        ({"memberIds": ["nope"], "until": until(30)}, "INVALID_INPUT", "memberIds"),
        ({"segmentKey": "nope", "until": until(30)}, "NOT_FOUND", "segmentKey"),
        ({"memberIds": [ana.id], "until": until(-1)}, "INVALID_INPUT", "until"),
    ]
    for extension, code, field in cases:
        result = await gql(EXTEND, {"input": extension}, token=tokens.marketer())
        assert result["data"]["extendPointsExpiry"] == {
            "membersExtended": 0,
            "userErrors": [{"code": code, "field": field}],
        }, extension
    assert await count(database, "audit_log") == 0


async def test_a_member_token_is_forbidden_and_writes_nothing(gql, tokens, database):
    ana = await enrolled(gql, tokens, "ana@example.com")
    entries = await count(database, "ledger_entries")
    result = await gql(EXTEND, {"input": {"memberIds": [ana.id], "until": until(400)}}, token=ana.token)
    assert error_codes(result) == ["FORBIDDEN"], result
    assert await count(database, "ledger_entries") == entries
    assert await count(database, "audit_log") == 0
    (wallet,) = (await gql(EXPIRING, token=ana.token))["data"]["me"]["wallets"]
    assert datetime.fromisoformat(wallet["expiringSoon"][0]["expiresAt"]) < datetime.fromisoformat(until(400))
