"""The KPIs' pass over the purchases, split into ranges of members run side by side (a set
of members in halves, everyone at the median of the planner's statistics), sums to the
figures worked out from every purchase row."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tortoise import connections

from domain import clock
from domain.program.config import parse
from domain.purchases import service as purchases
from tests.conftest import BASE, buy, new_member


def program():
    return parse(
        BASE.format(earning="", expiry='policy = "never"', pending=0, welcome=0, cashback="enabled = false"), "t"
    )


async def by_hand(before, start, end, members=None) -> purchases.repository.PurchaseActivity:
    rows = await connections.get("default").execute_query_dict(
        "SELECT member_id, amount - refunded_amount AS net, occurred_at FROM purchases"
    )
    now: dict = {}
    earlier: set = set()
    net = Decimal(0)
    for r in rows:
        if members is not None and r["member_id"] not in members:
            continue
        if start <= r["occurred_at"] < end:
            now[r["member_id"]] = now.get(r["member_id"], 0) + 1
            net += r["net"]
        elif before <= r["occurred_at"] < start:
            earlier.add(r["member_id"])
    return purchases.repository.PurchaseActivity(
        active=len(now),
        repeaters=sum(1 for n in now.values() if n > 1),
        active_before=len(earlier),
        retained=len(earlier & set(now)),
        orders=sum(now.values()),
        net_sales=net,
    )


async def test_the_ranges_of_members_add_up_to_every_purchase():
    p = program()
    start = clock.now()
    ms = [await new_member(p) for _ in range(60)]
    for day in range(4):
        for i, m in enumerate(ms):
            if (i + day) % 3 == 0:  # once or twice each: a histogram, not only common values
                await buy(p, m, f"{day}-{i}", f"{5 + i}.{day}0")
        clock.advance(timedelta(days=1))
    await purchases.refund(p, external_id="2-1", amount=Decimal("6.20"))  # wholly: still an order
    await purchases.refund(p, external_id="3-3", amount=Decimal("1.00"))
    conn = connections.get("default")
    await conn.execute_query("ANALYZE purchases")
    stats = await conn.execute_query_dict(
        "SELECT array_length(histogram_bounds::text::uuid[], 1) AS n FROM pg_stats"
        " WHERE schemaname = current_schema() AND tablename = 'purchases' AND attname = 'member_id'"
    )
    assert stats and (stats[0]["n"] or 0) >= 4  # so everyone's pass is split at its median

    before, mid, end = start, start + timedelta(days=2), start + timedelta(days=4)
    assert await purchases.activity(before, mid, end) == await by_hand(before, mid, end)
    some = ms[::3]
    assert await purchases.activity(before, mid, end, some) == await by_hand(before, mid, end, set(some))
    assert await purchases.activity(before, mid, end, []) == await by_hand(before, mid, end, set())
