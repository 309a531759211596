"""Rewards at their edges: a redemption that spends the balance to the last point, five
members racing for the last item, a coupon at and after its expiry instant."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from domain import clock, db
from tests.conftest import OPS, WELCOME, GraphQL, Member, count, enrolled, ledger_sums


async def create_reward(gql, tokens, name: str, cost: int, stock: int | None) -> str:
    variables = {"name": name, "pointsCost": cost, "stock": stock}
    created = await gql(OPS["CreateReward"], variables, token=tokens.marketer())
    payload = created["data"]["createReward"]
    assert payload["userErrors"] == [], payload
    return payload["reward"]["id"]


async def redeem(gql, token: str, reward_id: str, key: str) -> dict:
    result = await gql(OPS["RedeemReward"], {"rewardId": reward_id, "idempotencyKey": key}, token=token)
    assert "errors" not in result, result  # refusals are userErrors, never a top-level error
    return result["data"]["redeemReward"]


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["userErrors"]]


@pytest.fixture
async def ana(gql, tokens) -> Member:
    """A member with the welcome bonus and nothing else."""
    return await enrolled(gql, tokens, "ana@example.com")


async def test_a_reward_costing_exactly_the_balance_is_redeemed(gql, tokens, database, ana):
    short = await create_reward(gql, tokens, "Mug", WELCOME + 1, None)
    exact = await create_reward(gql, tokens, "Cup", WELCOME, None)

    refused = await redeem(gql, ana.token, short, "one-more")  # one point short: the other side of the edge
    assert codes(refused) == ["INSUFFICIENT_POINTS"] and refused["coupon"] is None
    assert await ledger_sums(database, ana.uuid) == (WELCOME,) * 3

    done = await redeem(gql, ana.token, exact, "all-of-it")
    assert codes(done) == [] and done["coupon"]["code"]
    assert done["wallet"]["balance"] == 0
    assert await ledger_sums(database, ana.uuid) == (0, 0, 0)  # balance, entries and lots agree
    assert await count(database, "coupons") == 1


async def test_five_members_race_for_the_last_item_one_wins_four_are_told_out_of_stock(
    live_server, gql, tokens, database
):
    """Each member on a connection of their own to a real server, all at once. Another
    transaction holds the reward's row until all five wait on it, so that they really
    meet at the last item rather than one after the other."""
    reward_id = await create_reward(gql, tokens, "Last scarf", 50, 1)
    members = [await enrolled(gql, tokens, f"racer{i}@example.com") for i in range(5)]

    async def attempt(i: int, member: Member) -> dict:
        async with httpx.AsyncClient(base_url=f"http://{live_server}", timeout=30) as own:
            return await redeem(GraphQL(own), member.token, reward_id, f"race-{i}")

    holder = await db.raw_connection(database.credentials)
    watcher = await db.raw_connection(database.credentials)  # outside the transaction: fresh statistics
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT 1 FROM rewards FOR UPDATE")
        racing = asyncio.gather(*(attempt(i, m) for i, m in enumerate(members)))
        for _ in range(200):
            waiting = await watcher.fetchval(  # behind the holder, or behind one who is
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND cardinality(pg_blocking_pids(pid)) > 0"
            )
            if waiting >= len(members):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"only {waiting} of the racers reached the reward")
        await hold.rollback()
        results = await racing
        assert await watcher.fetchval("SELECT stock FROM rewards") == 0
    finally:
        await holder.close()
        await watcher.close()

    winners = [i for i, r in enumerate(results) if r["coupon"] is not None]
    assert len(winners) == 1, results
    assert sorted(codes(r) for r in results) == [[]] + [["OUT_OF_STOCK"]] * 4
    assert await count(database, "coupons") == 1
    for i, member in enumerate(members):
        spent = 50 if i in winners else 0  # the losers' points are untouched
        assert await ledger_sums(database, member.uuid) == (WELCOME - spent,) * 3


async def coupon(gql, tokens, member: Member, key: str) -> tuple[str, datetime]:
    """A fresh coupon for a 10-point reward: (code, expiresAt)."""
    reward_id = await create_reward(gql, tokens, f"Tea {key}", 10, None)
    issued = (await redeem(gql, member.token, reward_id, key))["coupon"]
    return issued["code"], datetime.fromisoformat(issued["expiresAt"])


async def at_the_till(gql, tokens, code: str) -> dict:
    return (await gql(OPS["RedeemCoupon"], {"code": code}, token=tokens.staff()))["data"]["redeemCoupon"]


async def redeemed_at(database, code: str) -> datetime | None:
    conn = await db.raw_connection(database.credentials)
    try:
        return await conn.fetchval("SELECT redeemed_at FROM coupons WHERE code = $1", code)
    finally:
        await conn.close()


async def test_a_coupon_the_day_after_it_expired_is_refused_and_stays_unused(gql, tokens, database, ana):
    code, expires_at = await coupon(gql, tokens, ana, "late")
    assert expires_at - clock.now() > timedelta(days=29)  # the demo default: valid 30 days
    clock.advance(expires_at - clock.now() + timedelta(days=1))
    late = await at_the_till(gql, tokens, code)
    assert codes(late) == ["EXPIRED"] and late["coupon"] is None
    assert await redeemed_at(database, code) is None


async def test_a_coupon_is_valid_until_its_expiry_instant_which_itself_is_too_late(
    gql, tokens, database, ana, monkeypatch
):
    """The rule: a coupon is good while now < expiresAt; at expiresAt it is EXPIRED.
    The running clock cannot land on one microsecond, so it is held still here."""
    first, first_expiry = await coupon(gql, tokens, ana, "edge-1")
    second, second_expiry = await coupon(gql, tokens, ana, "edge-2")

    monkeypatch.setattr(clock, "now", lambda: first_expiry - timedelta(microseconds=1))
    last_moment = await at_the_till(gql, tokens, first)
    assert codes(last_moment) == [] and last_moment["coupon"]["redeemedAt"]

    monkeypatch.setattr(clock, "now", lambda: second_expiry)
    on_the_instant = await at_the_till(gql, tokens, second)
    assert codes(on_the_instant) == ["EXPIRED"]
    assert await redeemed_at(database, second) is None
