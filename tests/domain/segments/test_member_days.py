"""One member's recomputation (inside each purchase) reads their per-day rollup,
purchase_days, and the purchases of the days its windows start in; the run over
everyone reads the purchases. For any history of purchases in several stores, partial
and whole refunds, at any hour, the two agree: after a member's run, a run over
everyone changes nothing of theirs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tortoise import connections
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import InvalidInput
from domain.program.config import load
from domain.purchases import service as purchases
from domain.segments import service as segments
from tests.conftest import buy, new_member, rollups_rebuilt

P = load(None)
R = segments.Rule
STORES = ("", "paris-1", "lyon-2")
RULES = {
    "spend_week": [R("SPEND", min=Decimal("40"), window_days=7)],
    "spend_ever": [R("SPEND", min=Decimal("100"))],
    "three_in_two_days": [R("PURCHASE_COUNT", min=Decimal(3), window_days=2)],
    "one_today": [R("PURCHASE_COUNT", min=Decimal(1), max=Decimal(1), window_days=1)],
    "paris_month": [R("STORES_VISITED", store_ids=("paris-1",), window_days=30)],
    "two_stores": [R("STORES_VISITED", min=Decimal(2), window_days=3)],
    "quiet": [R("DAYS_SINCE_LAST_PURCHASE", min=Decimal(2))],
}


async def member_run_then_everyone_changes_nothing(member) -> None:
    """The member's segments as their own run leaves them stay as they are through a run over everyone."""
    async with in_transaction() as conn:
        await segments.recompute_member(conn, P, member)
    theirs = await segments.keys_of(member)
    await segments.recompute(P)
    assert await segments.keys_of(member) == theirs


async def days_match_purchases() -> bool:
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT COUNT(*) AS wrong FROM (
            SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, store_key,
                   COUNT(*) FILTER (WHERE refunded_amount < amount) AS n, SUM(amount - refunded_amount) AS spend
            FROM purchases GROUP BY 1, 2, 3
        ) p FULL JOIN purchase_days d USING (member_id, day, store_key)
        WHERE COALESCE(p.n, 0) <> COALESCE(d.purchases, 0) OR COALESCE(p.spend, 0) <> COALESCE(d.spend, 0)
        """
    )
    return rows[0]["wrong"] == 0


operations = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(1, 60), st.sampled_from(STORES)),
        st.tuples(st.just("refund"), st.integers(0, 50), st.sampled_from(["part", "all"])),
        st.tuples(st.just("hours"), st.integers(1, 40), st.just("")),
        st.tuples(st.just("days"), st.integers(1, 40), st.just("")),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
# Two purchases either side of a window's start within one UTC day, one wholly refunded.
@example(
    ops=[("buy", 30, "paris-1"), ("hours", 10, ""), ("buy", 20, "lyon-2"), ("refund", 0, "all"), ("hours", 159, "")]
)
async def test_a_members_run_over_their_days_agrees_with_the_run_over_purchases(ops):
    clock.reset()
    existing = await segments.existing_keys(list(RULES))  # hypothesis's examples share the database
    for key, rules in RULES.items():
        if key not in existing:
            await segments.create(P, key=key, name=key, rules=rules, actor="t")
    m = await new_member(P)
    receipts: list[tuple[str, Decimal]] = []
    for i, (op, n, arg) in enumerate(ops):
        if op == "buy":
            purchase, _ = await buy(P, m, f"{m}-{i}", str(n), store_key=arg)
            receipts.append((purchase.external_id, purchase.amount))
        elif op == "refund" and receipts:
            receipt, amount = receipts[n % len(receipts)]
            try:  # a part, or the whole amount: either is refused once the purchase is refunded
                await purchases.refund(P, external_id=receipt, amount=Decimal("0.5") if arg == "part" else amount)
            except InvalidInput:
                pass
        elif op == "hours":
            clock.advance(timedelta(hours=n))
        elif op == "days":
            clock.advance(timedelta(days=n))
        await member_run_then_everyone_changes_nothing(m)
    assert await days_match_purchases()


async def test_the_migration_backfills_the_days_from_the_purchases():
    a = await new_member(P)
    await buy(P, a, "A-1", "40", store_key="paris-1")
    await buy(P, a, "A-2", "7")
    clock.advance(timedelta(days=2))
    await buy(P, a, "A-3", "9", store_key="paris-1")
    await purchases.refund(P, external_id="A-2", amount=Decimal("7"))
    await purchases.refund(P, external_id="A-1", amount=Decimal("1.5"))
    await rollups_rebuilt()
    assert await days_match_purchases()
    await member_run_then_everyone_changes_nothing(a)
