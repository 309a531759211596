"""The four built-in segments on hand-made members, each at its boundaries: the day
before and the day after a threshold, with the clock moved (the demo program: new under
30 days, a 90-day window, high value from 200 EUR over 6 purchases or the top tier, at
risk after 45 days without a purchase for a member with 3 or more)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from domain import clock
from domain.program.config import load
from domain.purchases import service as purchases
from domain.segments import service as segments
from tests.conftest import buy, new_member

P = load(None)
DAY = timedelta(days=1)


async def now_in(member_id) -> list[str]:
    """The member's segments after the worker's recomputation."""
    await segments.recompute(P)
    return await segments.keys_of(member_id)


def test_the_demo_thresholds_these_tests_rely_on():
    s = P.segments
    assert (s.new_days, s.window_days, s.high_value_purchases, s.at_risk_purchases, s.at_risk_days) == (
        30,
        90,
        6,
        3,
        45,
    )
    assert s.high_value_spend == 200 and P.top_tier.key == "gold"


async def test_new_until_30_days_after_joining():
    ana = await new_member(P)
    clock.advance(29 * DAY)
    assert await now_in(ana) == ["new"]
    clock.advance(2 * DAY)  # day 31
    assert await now_in(ana) == []
    changes = await segments.changes_of(ana)
    assert [(c.segment_key, c.change) for c in changes] == [("new", "ENTERED"), ("new", "LEFT")]
    assert abs(changes[1].at - changes[0].at - 2 * DAY) < timedelta(seconds=5)  # the real clock runs too


async def test_new_allows_one_purchase_not_two():
    ana = await new_member(P)
    await buy(P, ana, "r1", "5.00")
    assert await segments.keys_of(ana) == ["new"]  # recomputed inside the purchase
    await buy(P, ana, "r2", "5.00")
    assert await segments.keys_of(ana) == ["occasional"]  # at once, without the worker


async def test_occasional_while_a_purchase_is_in_the_window():
    ana = await new_member(P)
    await buy(P, ana, "r1", "5.00")
    await buy(P, ana, "r2", "5.00")
    clock.advance(89 * DAY)
    assert await now_in(ana) == ["occasional"]
    clock.advance(2 * DAY)  # day 91: the window is empty; two purchases are no regular
    assert await now_in(ana) == []


async def test_at_risk_after_45_days_without_a_purchase():
    ana = await new_member(P)
    for n in range(3):
        await buy(P, ana, f"r{n}", "5.00")
    clock.advance(44 * DAY)
    assert await now_in(ana) == ["occasional"]
    clock.advance(2 * DAY)  # day 46
    assert await now_in(ana) == ["at_risk"]
    await buy(P, ana, "back", "5.00")  # back again: out of at_risk at once
    assert await segments.keys_of(ana) == ["occasional"]


async def test_high_value_by_spend_and_purchases_in_the_window():
    ana = await new_member(P)
    await buy(P, ana, "big", "100.00")  # day 0
    clock.advance(60 * DAY)
    for n in range(4):
        await buy(P, ana, f"r{n}", "20.00")
    assert await segments.keys_of(ana) == ["occasional"]  # 5 purchases, 180 EUR
    await buy(P, ana, "r4", "20.00")
    assert await segments.keys_of(ana) == ["high_value"]  # 6 purchases, 200 EUR
    clock.advance(29 * DAY)  # day 89: the first purchase is still in the window
    assert await now_in(ana) == ["high_value"]
    clock.advance(2 * DAY)  # day 91: it left the window
    assert await now_in(ana) == ["occasional"]


async def test_high_value_by_the_top_tier_once_no_longer_new():
    ana = await new_member(P)
    await buy(P, ana, "gold", "500.00")  # 5,000 points: gold
    assert await segments.keys_of(ana) == ["new"]
    clock.advance(29 * DAY)
    assert await now_in(ana) == ["new"]
    clock.advance(2 * DAY)
    assert await now_in(ana) == ["high_value"]


async def test_a_refunded_purchase_does_not_count():
    ana = await new_member(P)
    await buy(P, ana, "r1", "5.00")
    await buy(P, ana, "r2", "5.00")
    assert await segments.keys_of(ana) == ["occasional"]
    await purchases.refund(P, external_id="r2", amount=Decimal("5.00"))
    assert await segments.keys_of(ana) == ["new"]  # recomputed inside the refund, without the worker
    assert await now_in(ana) == ["new"]
    changes = await segments.changes_of(ana)
    assert {(c.segment_key, c.change) for c in changes[-2:]} == {("occasional", "LEFT"), ("new", "ENTERED")}


async def test_running_twice_records_nothing_twice():
    ana = await new_member(P)
    first = await segments.recompute(P)
    again = await segments.recompute(P)
    assert (first.entered, first.left) == (1, 0)
    assert (again.entered, again.left) == (0, 0)
    assert len(await segments.changes_of(ana)) == 1
