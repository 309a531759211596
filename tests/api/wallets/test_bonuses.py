"""Referrals and activity rewards: credited once, within their caps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain import clock
from tests.conftest import enroll, error_codes, ledger_sums, member_uuid, purchase

ME = "{ me { referralCode wallets { balance } } }"
ACTIVITY = """mutation($m: ID!, $a: Activity!, $r: String!) { recordActivity(input: {memberId: $m, activity: $a,
  reference: $r}) { wallet { balance } userErrors { code field } } }"""


async def balance(gql, token: str) -> int:
    return (await gql(ME, token=token))["data"]["me"]["wallets"][0]["balance"]


async def test_a_referral_pays_both_once_at_the_first_purchase(gql, tokens, database):
    ana = await enroll(gql, tokens, "ana@example.com")
    ana_token = tokens.member(member_uuid(ana["id"]))
    code = (await gql(ME, token=ana_token))["data"]["me"]["referralCode"]
    assert code and len(code) == 10

    bo = await enroll(gql, tokens, "bo@example.com", referralCode=code.lower())  # as typed by hand
    bo_token = tokens.member(member_uuid(bo["id"]))
    assert await balance(gql, ana_token) == 100  # nothing yet: Bo has not bought anything

    await asyncio.gather(*(purchase(gql, tokens, bo["id"], f"first-{i}", "10.00") for i in range(5)))
    assert await balance(gql, ana_token) == 100 + 150
    assert await balance(gql, bo_token) == 100 + 150 + 5 * 100
    await purchase(gql, tokens, bo["id"], "later", "10.00")
    assert await balance(gql, ana_token) == 100 + 150
    for member in (ana, bo):
        b, entries, lots = await ledger_sums(database, member_uuid(member["id"]))
        assert b == entries == lots

    unknown = await gql(
        "mutation($e: String!, $c: String) { enrollMember(input: {email: $e, referralCode: $c})"
        " { member { id } userErrors { code field } } }",
        {"e": "cy@example.com", "c": "NOPE123456"},
        token=tokens.staff(),
    )
    assert unknown["data"]["enrollMember"]["userErrors"] == [{"code": "INVALID_INPUT", "field": "referralCode"}]


async def test_activities_pay_within_their_caps(gql, tokens):
    ana = await enroll(gql, tokens, "ana@example.com")

    async def record(activity: str, reference: str) -> dict:
        # a fresh token each time: the clock moves by days in this test
        result = await gql(ACTIVITY, {"m": ana["id"], "a": activity, "r": reference}, token=tokens.staff())
        return result["data"]["recordActivity"]

    first = await record("SURVEY", "survey-2030-05")
    assert first["userErrors"] == [] and first["wallet"]["balance"] == 100 + 50
    again = await record("SURVEY", "survey-2030-05")  # the same event sent twice
    assert again["userErrors"] == [] and again["wallet"]["balance"] == 150
    second = await record("SURVEY", "survey-2030-06")  # another survey, the same day
    assert second["userErrors"] == [{"code": "NOT_ELIGIBLE", "field": "activity"}]
    clock.advance(timedelta(days=1))
    assert (await record("SURVEY", "survey-2030-06"))["userErrors"] == []

    assert (await record("PROFILE_COMPLETED", "profile"))["userErrors"] == []
    clock.advance(timedelta(days=1))
    once = await record("PROFILE_COMPLETED", "profile-again")
    assert once["userErrors"] == [{"code": "NOT_ELIGIBLE", "field": "activity"}]

    member = await gql(
        ACTIVITY, {"m": ana["id"], "a": "CHECK_IN", "r": "x"}, token=tokens.member(member_uuid(ana["id"]))
    )
    assert error_codes(member) == ["FORBIDDEN"]
