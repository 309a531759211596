"""The ledger's rules, driven through the domain use cases against real PostgreSQL,
with programs written for each rule and the clock moved instead of waited for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tortoise import connections

from domain import clock
from domain.members import service as members
from domain.program.config import parse
from domain.purchases import service as purchases
from domain.tiers import service as tiers
from domain.wallets import service as wallets
from tests.conftest import BASE, buy, counting_queries, ledger_step, new_member, state


def program(earning="", expiry='policy = "rolling"\nmonths = 12', pending=0, welcome=0, cashback="enabled = false"):
    return parse(
        BASE.format(earning=earning, expiry=expiry, pending=pending, welcome=welcome, cashback=cashback), "test.toml"
    )


def assert_consistent(s: dict) -> None:
    assert s["balance"] == s["entries"] == s["lots"], s
    assert s["pending"] == s["pending_lots"], s
    assert s["balance"] >= 0 and s["pending"] >= 0 and s["negative_lots"] == 0, s


async def test_pending_points_wait_for_the_return_window_and_a_refund_cancels_them():
    p = program(pending=14)
    m = await new_member(p)
    await buy(p, m, "P-1", "30")
    s = await state(m)
    assert (s["balance"], s["pending"]) == (0, 30)
    await purchases.refund(p, external_id="P-1", amount=Decimal("10"))
    s = await state(m)
    assert (s["balance"], s["pending"]) == (0, 20)
    assert_consistent(s)

    clock.advance(timedelta(days=15))
    run = await tiers.run_expiry(p)
    assert run.released_members == 1
    s = await state(m)
    assert (s["balance"], s["pending"]) == (20, 0)
    assert_consistent(s)
    # a refund after the window takes spendable points back
    await purchases.refund(p, external_id="P-1", amount=Decimal("20"))
    s = await state(m)
    assert (s["balance"], s["pending"]) == (0, 0)
    assert_consistent(s)


async def test_the_daily_pass_moves_a_member_up_when_released_points_reach_a_tier():
    p = program(pending=14)
    m = await new_member(p)
    await buy(p, m, "T-1", "150")  # 150 pending points: the member stays on the base tier
    assert (await members.get(m)).tier_key == "base"
    clock.advance(timedelta(days=15))
    assert (await tiers.run_expiry(p)).released_members == 1
    assert (await members.get(m)).tier_key == "plus"  # Plus takes 100
    s = await state(m)
    assert (s["balance"], s["pending"]) == (150, 0)
    assert_consistent(s)


async def test_released_points_are_spendable_by_the_next_operation_without_the_daily_run():
    p = program(pending=1)
    m = await new_member(p)
    await buy(p, m, "P-1", "30")
    clock.advance(timedelta(days=2))
    await wallets.adjust(p, member_id=m, points=-30, reason="spend", idempotency_key=f"k-{m}", by="test")
    s = await state(m)
    assert (s["balance"], s["pending"]) == (0, 0)
    assert_consistent(s)


async def test_spending_takes_the_points_that_expire_first():
    p = program(expiry='policy = "rolling"\nmonths = 1')
    m = await new_member(p)
    await buy(p, m, "E-1", "10")  # expires in a month
    clock.advance(timedelta(days=20))
    await buy(p, m, "E-2", "10")  # expires 20 days later
    await wallets.adjust(p, member_id=m, points=-10, reason="spend", idempotency_key=f"s-{m}", by="test")
    clock.advance(timedelta(days=15))  # past the first lot's expiry only
    run = await tiers.run_expiry(p)
    assert run.expired == 0  # the first lot was spent: nothing expires
    s = await state(m)
    assert s["balance"] == 10
    assert_consistent(s)


async def test_expiry_runs_once_and_tells_what_expired():
    p = program(expiry='policy = "rolling"\nmonths = 1')
    m = await new_member(p)
    await buy(p, m, "X-1", "25")
    clock.advance(timedelta(days=40))
    assert (await tiers.run_expiry(p)).expired == 25
    assert (await tiers.run_expiry(p)).expired == 0
    s = await state(m)
    assert s["balance"] == 0
    assert_consistent(s)
    rows = await wallets.entries((await _wallet_id(m)), 10, None)
    assert next((r.kind, r.amount, r.balance_after) for r in rows) == ("EXPIRE", -25, 0)


async def _wallet_id(member_id):
    rows = await connections.get("default").execute_query_dict(
        "SELECT id FROM wallets WHERE member_id = $1 AND kind = 'POINTS'", [member_id]
    )
    return rows[0]["id"]


async def test_tier_multipliers_promotions_and_caps():
    earning = """
max_points_per_purchase = 150
max_points_per_day = 200
[[earning.promotions]]
name = "Double Tuesday"
multiplier = 2
weekdays = ["tue"]
[[earning.promotions]]
name = "Triple launch"
multiplier = 3
starts = 2030-01-01
ends = 2030-01-07
"""
    p = program(earning=earning)
    m = await new_member(p)
    clock.advance(datetime(2030, 1, 3, 12, tzinfo=UTC) - clock.now())  # Thursday of the launch week
    launch, _ = await buy(p, m, "T-1", "40")
    assert launch.points_earned == 120  # x3, and 120 qualifying points reach Plus (x2)
    clock.advance(timedelta(days=5))  # Tuesday 8 January
    tuesday, _ = await buy(p, m, "T-2", "40")
    assert tuesday.points_earned == 150  # 40 x2 tier x2 promotion = 160, capped at 150 a purchase
    again, _ = await buy(p, m, "T-3", "40")
    assert again.points_earned == 50  # the day's cap of 200 leaves 50
    capped, _ = await buy(p, m, "T-4", "40")
    assert capped.points_earned == 0
    clock.advance(timedelta(days=1))  # Wednesday: no promotion, a new day
    wednesday, _ = await buy(p, m, "T-5", "40")
    assert wednesday.points_earned == 80
    assert_consistent(await state(m))


async def test_cashback_goes_to_its_own_wallet_in_minor_units():
    p = program(cashback="enabled = true\npercent = 2.5")
    m = await new_member(p)
    purchase, _ = await buy(p, m, "C-1", "19.99")
    assert purchase.cashback_earned == 49  # 2.5% of 19.99 EUR = 0.49975 EUR, rounded down to cents
    s = await state(m, "CASHBACK")
    assert s["balance"] == 49
    assert_consistent(s)
    await purchases.refund(p, external_id="C-1", amount=Decimal("19.99"))
    assert (await state(m, "CASHBACK"))["balance"] == 0


async def test_welcome_and_birthday_bonuses_are_granted_once():
    p = program(welcome=25)
    m = await new_member(p)
    assert (await state(m))["balance"] == 25
    assert await wallets.grant_birthday_bonus(p, m, 2030) is not None
    assert await wallets.grant_birthday_bonus(p, m, 2030) is None
    assert await wallets.grant_birthday_bonus(p, m, 2031) is not None
    s = await state(m)
    assert s["balance"] == 25 + 50 + 50
    assert_consistent(s)


def test_requalification_moves_down_at_most_one_tier():
    p = program()
    top, plus, base = p.tier("top"), p.tier("plus"), p.tier("base")
    assert tiers.requalified(p, top, 0) == plus
    assert tiers.requalified(p, top, 150) == plus
    assert tiers.requalified(p, top, 1000) == top
    assert tiers.requalified(p, plus, 0) == base
    assert tiers.requalified(p, base, 5000) == top


# --- Property: any sequence keeps every invariant ------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 500)),
        st.tuples(st.just("spend"), st.integers(1, 600)),
        st.tuples(st.just("refund"), st.integers(1, 100)),
        st.tuples(st.just("expire"), st.just(0)),
        st.tuples(st.just("days"), st.integers(1, 200)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, pending=st.sampled_from([0, 10]))
# Found by hypothesis: the refund stays in the qualifying window after the purchase it
# takes back has left it, so the window's sum is negative at the next purchase.
@example(ops=[("earn", 2), ("days", 84), ("refund", 2), ("days", 200), ("days", 81), ("earn", 1)], pending=0)
async def test_any_sequence_keeps_balance_entries_and_lots_equal(ops, pending):
    clock.reset()
    p = program(pending=pending, expiry='policy = "rolling"\nmonths = 3', welcome=10)
    m = await new_member(p)
    receipts: list[tuple[str, Decimal]] = []
    for i, (op, n) in enumerate(ops):
        await ledger_step(p, m, receipts, i, op, n)
        assert_consistent(await state(m))


# --- Expiry at scale -------------------------------------------------------------------


async def test_a_hundred_thousand_lots_expire_in_one_set_based_run():
    p = program(expiry='policy = "rolling"\nmonths = 1')
    conn = connections.get("default")
    now = clock.now()
    past = now - timedelta(days=1)
    # 1,000 members with 100 past-due lots of 3 points each, written in bulk
    await conn.execute_script(f"""
        INSERT INTO members (id, member_number, email, timezone, locale, push_marketing, location_nudges,
                             tier_key, created_at, updated_at)
        SELECT gen_random_uuid(), 'S' || lpad(g::text, 9, '0'), 's' || g || '@example.com', 'UTC', 'en',
               false, false, 'base', now(), now()
        FROM generate_series(1, 1000) g;
        INSERT INTO wallets (id, member_id, kind, balance, pending, updated_at)
        SELECT gen_random_uuid(), id, 'POINTS', 300, 0, now() FROM members WHERE member_number LIKE 'S%';
        INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying, description,
                                    explanation, occurred_at)
        SELECT id, member_id, 'ADJUST', 300, 300, 0, 'seed', '{{}}', now() FROM wallets;
        INSERT INTO lots (wallet_id, amount, remaining, state, earned_at, available_at, expires_at,
                          description, explanation, qualifying)
        SELECT w.id, 3, 3, 'AVAILABLE', now(), now(), '{past.isoformat()}', 'seed', '{{}}', 0
        FROM wallets w CROSS JOIN generate_series(1, 100);
    """)
    assert (await conn.execute_query_dict("SELECT COUNT(*) AS n FROM lots"))[0]["n"] == 100_000

    with counting_queries() as queries:
        run = await tiers.run_expiry(p, batch=250)
    assert run.expired == 300_000
    # batches of 250 wallets: one (empty) for pending points, four to expire, one that finds nothing left
    assert run.batches == 6
    assert len(queries) <= 3 * run.batches, queries  # three statements a batch, not one per lot
    totals = (
        await conn.execute_query_dict(
            """SELECT (SELECT SUM(balance) FROM wallets) AS balances,
                  (SELECT SUM(remaining) FROM lots) AS lots,
                  (SELECT SUM(amount) FROM ledger_entries) AS entries,
                  (SELECT COUNT(*) FROM ledger_entries WHERE kind = 'EXPIRE') AS expire_entries,
                  (SELECT COUNT(*) FROM wallet_events) AS events"""
        )
    )[0]
    assert (totals["balances"], totals["lots"], totals["entries"]) == (0, 0, 0)
    assert totals["expire_entries"] == 1000 and totals["events"] == 1000
    assert (await tiers.run_expiry(p)).expired == 0


@pytest.fixture(autouse=True)
def _real_time():
    clock.reset()
    yield
    clock.reset()


async def test_wallets_with_their_expiries_in_one_read_match_the_two_reads():
    # `Me` reads a member's wallets and their POINTS wallets' next expiries at once.
    p = program(expiry='policy = "rolling"\nmonths = 1', cashback="enabled = true\npercent = 2.5")
    m, other = await new_member(p), await new_member(p)
    for i in range(5):  # five expiry moments: the first three are read
        await buy(p, m, f"W-{i}", "10")
        clock.advance(timedelta(days=1))
    found, expiring = await wallets.wallets_expiring([m, other])
    assert found == await wallets.wallets_of([m, other])
    assert [w.kind for w in found[m]] == ["POINTS", "CASHBACK"]
    points = [w.id for ws in found.values() for w in ws if w.kind == "POINTS"]
    assert expiring == await wallets.expiring_soon(points)
    assert [e.amount for e in expiring[found[m][0].id]] == [10, 10, 10]
    assert expiring[found[other][0].id] == []
