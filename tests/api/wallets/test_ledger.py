"""Purchases, refunds, rewards, coupons and adjustments through the API, as the POS,
the app and the marketers' tools send them (the contract's documents, as written)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import (
    OPS,
    WELCOME,
    Member,
    count,
    enroll,
    enrolled,
    error_codes,
    ledger_sums,
    member_uuid,
    purchase,
)


@pytest.fixture
async def ana(gql, tokens) -> Member:
    return await enrolled(gql, tokens, "ana@example.com", displayName="Ana")


async def me(gql, member: Member) -> dict:
    return (await gql(OPS["Me"], token=member.token))["data"]["me"]


async def test_enrolment_opens_a_points_wallet_with_the_welcome_bonus(gql, ana, database):
    profile = await me(gql, ana)
    (wallet,) = profile["wallets"]
    assert wallet["kind"] == "POINTS" and wallet["unit"] == "POINTS"
    assert wallet["balance"] == WELCOME
    assert wallet["pendingBalance"] == 0
    assert [e["amount"] for e in wallet["expiringSoon"]] == [WELCOME]
    assert await ledger_sums(database, ana.uuid) == (WELCOME, WELCOME, WELCOME)


async def test_a_purchase_earns_points_at_the_program_rate(gql, tokens, ana, database):
    result = await purchase(gql, tokens, ana, "R-1", "12.34")
    assert result["userErrors"] == []
    assert result["purchase"]["externalId"] == "R-1"
    assert result["purchase"]["pointsEarned"] == 123  # 10 per euro, rounded down
    assert result["wallet"]["balance"] == WELCOME + 123
    assert await ledger_sums(database, ana.uuid) == (WELCOME + 123,) * 3


async def test_the_same_receipt_again_credits_nothing_and_answers_the_same(gql, tokens, ana):
    first = await purchase(gql, tokens, ana, "R-1", "20.00")
    again = await purchase(gql, tokens, ana, "R-1", "20.00")
    assert again == first
    conflict = await purchase(gql, tokens, ana, "R-1", "25.00")
    assert [(e["code"], e["field"]) for e in conflict["userErrors"]] == [("IDEMPOTENCY_CONFLICT", "externalId")]
    # another store or channel is another receipt
    other = await purchase(gql, tokens, ana, "R-1", "20.00", storeId="lyon-2")
    assert other["purchase"]["id"] != first["purchase"]["id"]
    profile = await me(gql, ana)
    assert profile["wallets"][0]["balance"] == WELCOME + 200 + 200


async def test_fifty_concurrent_sends_of_one_receipt_credit_once(gql, tokens, ana, database):
    results = await asyncio.gather(*(purchase(gql, tokens, ana, "R-RACE", "10.00") for _ in range(50)))
    assert all(r == results[0] for r in results), "50 identical answers"
    assert results[0]["purchase"]["pointsEarned"] == 100
    assert await count(database, "purchases") == 1
    assert await ledger_sums(database, ana.uuid) == (WELCOME + 100,) * 3


async def test_one_receipt_sent_for_two_members_at_once_credits_one_of_them_once(gql, tokens, ana, database):
    # Different members: no wallet lock orders them, the receipt's unique key does (a
    # send that waits on the other's insert finds the stored purchase after it commits).
    bo = await enrolled(gql, tokens, "bo@example.com")
    results = await asyncio.gather(
        *(purchase(gql, tokens, who, "R-SHARED", "10.00") for _ in range(20) for who in (ana, bo))
    )
    won = [r for r in results if not r["userErrors"]]
    lost = [r for r in results if r["userErrors"]]
    assert won and all(r == won[0] for r in won), "the winner's sends all answer the same purchase"
    assert all([e["code"] for e in r["userErrors"]] == ["IDEMPOTENCY_CONFLICT"] for r in lost)
    assert len(won) == 20 and len(lost) == 20  # every send of the winner, none of the other's
    assert await count(database, "purchases") == 1
    sums = [await ledger_sums(database, m.uuid) for m in (ana, bo)]
    assert sorted(sums) == [(WELCOME,) * 3, (WELCOME + 100,) * 3]


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        ("-5.00", "EUR", "amount"),
        ("0", "EUR", "amount"),
        ("1" + "0" * 30, "EUR", "amount"),
        ("12.345", "EUR", "amount"),
        ("12.00", "USD", "currency"),
        ("12.00", "eur", "currency"),
    ],
)
async def test_bad_amounts_are_invalid_input_and_write_nothing(gql, tokens, ana, database, amount, currency, field):
    result = await purchase(gql, tokens, ana, "R-BAD", amount, currency=currency)
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("INVALID_INPUT", field)]
    assert result["purchase"] is None
    assert await count(database, "purchases") == 0
    assert await ledger_sums(database, ana.uuid) == (WELCOME,) * 3


@pytest.mark.parametrize("amount", ["lots", "NaN", "Infinity", "10_000", "\uff11\uff10", " 10 ", "1e3"])
async def test_not_a_plain_decimal_is_refused_before_anything_runs(gql, tokens, ana, database, amount):
    result = await gql(
        OPS["RecordPurchase"],
        {"memberId": ana.id, "externalId": "R", "amount": amount, "currency": "EUR", "channel": "STORE"},
        token=tokens.staff(),
    )
    assert result.get("data") is None and result["errors"]
    assert "plain decimal" in result["errors"][0]["message"]
    assert await count(database, "purchases") == 0


async def test_unknown_members_and_wrong_ids(gql, tokens, ana, database):
    import base64
    import uuid

    nobody = base64.urlsafe_b64encode(f"Member:{uuid.uuid4()}".encode()).rstrip(b"=").decode()
    result = await purchase(gql, tokens, nobody, "R-2", "5.00")
    assert [(e["code"], e["field"]) for e in result["userErrors"]] == [("NOT_FOUND", "memberId")]

    reward = await gql(
        OPS["CreateReward"], {"name": "Coffee", "pointsCost": 50, "stock": None}, token=tokens.marketer()
    )
    reward_id = reward["data"]["createReward"]["reward"]["id"]
    wrong = await purchase(gql, tokens, reward_id, "R-3", "5.00")
    assert [(e["code"], e["field"]) for e in wrong["userErrors"]] == [("INVALID_INPUT", "memberId")]
    assert "Reward" in wrong["userErrors"][0]["message"]
    assert await count(database, "purchases") == 0


async def test_refunds_take_points_back_in_proportion_and_never_below_zero(gql, tokens, ana, database):
    await purchase(gql, tokens, ana, "R-10", "50.00")  # 500 points
    half = await gql(OPS["RefundPurchase"], {"externalId": "R-10", "amount": "25.00"}, token=tokens.staff())
    assert half["data"]["refundPurchase"]["userErrors"] == []
    assert await ledger_sums(database, ana.uuid) == (WELCOME + 250,) * 3

    # spend most of what is left, then refund the rest: only what is there is taken
    await gql(
        OPS["AdjustPoints"],
        {"memberId": ana.id, "points": -300, "reason": "test spend", "idempotencyKey": "spend-1"},
        token=tokens.staff(),
    )
    rest = await gql(OPS["RefundPurchase"], {"externalId": "R-10", "amount": "25.00"}, token=tokens.staff())
    assert rest["data"]["refundPurchase"]["userErrors"] == []
    assert await ledger_sums(database, ana.uuid) == (0, 0, 0)
    from domain import db

    conn = await db.raw_connection(database.credentials)
    shortfall = await conn.fetchval("SELECT shortfall FROM purchases WHERE external_id = 'R-10'")
    await conn.close()
    assert shortfall == 250 - 50  # 250 to take back, 50 were left

    too_much = await gql(OPS["RefundPurchase"], {"externalId": "R-10", "amount": "0.01"}, token=tokens.staff())
    assert (
        error_codes(too_much) == [] and too_much["data"]["refundPurchase"]["userErrors"][0]["code"] == "INVALID_INPUT"
    )
    unknown = await gql(OPS["RefundPurchase"], {"externalId": "nope", "amount": "1.00"}, token=tokens.staff())
    assert unknown["data"]["refundPurchase"]["userErrors"][0]["code"] == "NOT_FOUND"


async def test_history_pages_through_entries_newest_first(gql, tokens, ana):
    for i in range(5):
        await purchase(gql, tokens, ana, f"H-{i}", f"{i + 1}.00")
    wallet_id = (await me(gql, ana))["wallets"][0]["id"]
    seen, after = [], None
    while True:
        node = (await gql(OPS["WalletHistory"], {"walletId": wallet_id, "first": 2, "after": after}, token=ana.token))[
            "data"
        ]["node"]
        seen += [(e["node"]["kind"], e["node"]["amount"], e["node"]["balanceAfter"]) for e in node["entries"]["edges"]]
        if not node["entries"]["pageInfo"]["hasNextPage"]:
            break
        after = node["entries"]["pageInfo"]["endCursor"]
    assert [k for k, _, _ in seen] == ["EARN"] * 5 + ["BONUS"]
    assert [a for _, a, _ in seen] == [50, 40, 30, 20, 10, 100]
    assert [b for _, _, b in seen] == [250, 200, 160, 130, 110, 100]
    # another member cannot read this wallet
    bo = await enroll(gql, tokens, "bo@example.com")
    other = await gql(
        OPS["WalletHistory"],
        {"walletId": wallet_id, "first": 2, "after": None},
        token=tokens.member(member_uuid(bo["id"])),
    )
    assert other["data"]["node"] is None


async def test_rewards_redeem_once_and_coupons_are_accepted_once(gql, tokens, ana, database):
    created = await gql(
        OPS["CreateReward"], {"name": "Free coffee", "pointsCost": 80, "stock": 1}, token=tokens.marketer()
    )
    reward = created["data"]["createReward"]["reward"]
    assert reward["available"] is True
    listed = await gql(OPS["Rewards"], {"first": 10}, token=ana.token)
    assert [e["node"]["name"] for e in listed["data"]["rewards"]["edges"]] == ["Free coffee"]

    redeemed = await gql(OPS["RedeemReward"], {"rewardId": reward["id"], "idempotencyKey": "k1"}, token=ana.token)
    payload = redeemed["data"]["redeemReward"]
    assert payload["userErrors"] == []
    assert payload["wallet"]["balance"] == WELCOME - 80
    code = payload["coupon"]["code"]
    again = await gql(OPS["RedeemReward"], {"rewardId": reward["id"], "idempotencyKey": "k1"}, token=ana.token)
    assert again["data"]["redeemReward"]["coupon"] == payload["coupon"]

    sold_out = await gql(OPS["RedeemReward"], {"rewardId": reward["id"], "idempotencyKey": "k2"}, token=ana.token)
    assert [e["code"] for e in sold_out["data"]["redeemReward"]["userErrors"]] == ["OUT_OF_STOCK"]

    till = await gql(OPS["RedeemCoupon"], {"code": code}, token=tokens.staff())
    assert till["data"]["redeemCoupon"]["coupon"]["redeemedAt"]
    twice = await gql(OPS["RedeemCoupon"], {"code": code}, token=tokens.staff())
    assert [e["code"] for e in twice["data"]["redeemCoupon"]["userErrors"]] == ["ALREADY_REDEEMED"]
    assert await ledger_sums(database, ana.uuid) == (WELCOME - 80,) * 3


async def test_insufficient_points_is_a_user_error_and_spends_nothing(gql, tokens, ana, database):
    created = await gql(
        OPS["CreateReward"], {"name": "Cake", "pointsCost": 500, "stock": None}, token=tokens.marketer()
    )
    reward_id = created["data"]["createReward"]["reward"]["id"]
    result = await gql(OPS["RedeemReward"], {"rewardId": reward_id, "idempotencyKey": "k"}, token=ana.token)
    assert [e["code"] for e in result["data"]["redeemReward"]["userErrors"]] == ["INSUFFICIENT_POINTS"]
    assert await count(database, "coupons") == 0
    assert await ledger_sums(database, ana.uuid) == (WELCOME,) * 3


async def test_forty_racing_redemptions_never_overspend(gql, tokens, ana, database):
    await gql(
        OPS["AdjustPoints"],
        {"memberId": ana.id, "points": 935, "reason": "race", "idempotencyKey": "top-up"},
        token=tokens.staff(),
    )
    balance, cost = WELCOME + 935, 100  # 1035 points: 10 coupons, 35 left
    created = await gql(
        OPS["CreateReward"], {"name": "Tea", "pointsCost": cost, "stock": None}, token=tokens.marketer()
    )
    reward_id = created["data"]["createReward"]["reward"]["id"]

    async def redeem(key: str) -> dict:
        result = await gql(OPS["RedeemReward"], {"rewardId": reward_id, "idempotencyKey": key}, token=ana.token)
        return result["data"]["redeemReward"]

    results = await asyncio.gather(*(redeem(f"key-{i}") for i in range(40)))
    won = [r for r in results if r["coupon"]]
    lost = [r for r in results if not r["coupon"]]
    assert len(won) == balance // cost
    assert {e["code"] for r in lost for e in r["userErrors"]} == {"INSUFFICIENT_POINTS"}
    assert await ledger_sums(database, ana.uuid) == (balance - (balance // cost) * cost,) * 3

    # the same key 20 times at once redeems once
    await gql(
        OPS["AdjustPoints"],
        {"memberId": ana.id, "points": 500, "reason": "race 2", "idempotencyKey": "top-up-2"},
        token=tokens.staff(),
    )
    same = await asyncio.gather(*(redeem("same-key") for _ in range(20)))
    assert len({r["coupon"]["code"] for r in same}) == 1
    assert await count(database, "coupons") == balance // cost + 1
    assert await ledger_sums(database, ana.uuid) == (35 + 500 - cost,) * 3


async def test_adjustments_are_idempotent_and_never_go_below_zero(gql, tokens, ana, database):
    variables = {"memberId": ana.id, "points": 40, "reason": "Cold coffee", "idempotencyKey": "adj-1"}
    first = await gql(OPS["AdjustPoints"], variables, token=tokens.staff())
    assert first["data"]["adjustPoints"]["wallet"]["balance"] == WELCOME + 40
    again = await gql(OPS["AdjustPoints"], variables, token=tokens.staff())
    assert again["data"]["adjustPoints"]["wallet"]["balance"] == WELCOME + 40
    conflict = await gql(OPS["AdjustPoints"], {**variables, "points": 41}, token=tokens.staff())
    assert [e["code"] for e in conflict["data"]["adjustPoints"]["userErrors"]] == ["IDEMPOTENCY_CONFLICT"]
    below = await gql(
        OPS["AdjustPoints"], {**variables, "points": -1000, "idempotencyKey": "adj-2"}, token=tokens.staff()
    )
    assert [e["code"] for e in below["data"]["adjustPoints"]["userErrors"]] == ["INSUFFICIENT_POINTS"]
    member_token = await gql(OPS["AdjustPoints"], {**variables, "idempotencyKey": "adj-3"}, token=ana.token)
    assert error_codes(member_token) == ["FORBIDDEN"]
    assert await ledger_sums(database, ana.uuid) == (WELCOME + 40,) * 3


async def test_crossing_a_threshold_upgrades_the_tier_at_once(gql, tokens, ana):
    before = (await me(gql, ana))["tier"]
    assert before["current"]["name"] == "Bronze" and before["pointsToNextTier"] == 1000
    await purchase(gql, tokens, ana, "BIG-1", "100.00")  # 1000 qualifying points
    after = (await me(gql, ana))["tier"]
    assert after["current"]["name"] == "Silver"
    assert after["qualifyingPoints"] == 1000
    assert after["next"]["name"] == "Gold" and after["pointsToNextTier"] == 4000
    # Silver earns x1.25
    bonus = await purchase(gql, tokens, ana, "BIG-2", "10.00")
    assert bonus["purchase"]["pointsEarned"] == 125
