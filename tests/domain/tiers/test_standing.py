"""A standing sums the wallets' per-day rollup of qualifying points instead of the
window's entries: for any history (purchases, refunds, pending points released later,
expiry, adjustments), any window (rolling, calendar year) and any program time zone,
at any instant (the window's first day cut anywhere), it equals the plain SUM over the
ledger's entries in the window."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tortoise import connections

from domain import clock
from domain.program.config import parse
from domain.purchases import service as purchases
from domain.tiers import service as tiers
from tests.conftest import BASE, buy, ledger_step, new_member, rollups_rebuilt

ZONES = ("UTC", "Pacific/Kiritimati", "America/Adak", "Asia/Kathmandu")


def program(window: str, zone: str, pending: int):
    text = BASE.format(
        earning="", expiry='policy = "rolling"\nmonths = 3', pending=pending, welcome=10, cashback="enabled = false"
    )
    text = text.replace('timezone = "UTC"', f'timezone = "{zone}"')
    return parse(text + f'\n[tier_rules]\nwindow = "{window}"\n', "test.toml")


async def ledger_sum(member_id: uuid.UUID, since: datetime) -> int:
    """The reference: every qualifying entry after `since`, summed."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT COALESCE(SUM(qualifying), 0) AS q FROM ledger_entries WHERE member_id = $1 AND occurred_at > $2",
        [member_id, since],
    )
    return int(rows[0]["q"])


async def rollup_matches_entries() -> bool:
    """qualifying_days holds, per member and UTC day, the sum of that day's entries."""
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT COUNT(*) AS wrong FROM (
            SELECT member_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, SUM(qualifying) AS q
            FROM ledger_entries GROUP BY 1, 2
        ) e FULL JOIN qualifying_days d USING (member_id, day)
        WHERE COALESCE(e.q, 0) <> COALESCE(d.qualifying, 0)
        """
    )
    return rows[0]["wrong"] == 0


async def assert_standing_is_the_ledger_sum(p, member_id: uuid.UUID, probes: list[int]) -> None:
    now = clock.now()
    # the window's start moves with the instant asked about: probe around now, hours apart
    for hours in [0, *probes]:
        at = now - timedelta(hours=hours)
        found = await tiers.standing(None, p, member_id, at)
        assert found.qualifying == await ledger_sum(member_id, tiers.window_start(p, at)), (hours, at)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 500)),
        st.tuples(st.just("spend"), st.integers(1, 600)),
        st.tuples(st.just("refund"), st.integers(1, 100)),
        st.tuples(st.just("expire"), st.just(0)),
        st.tuples(st.just("hours"), st.integers(1, 30)),
        st.tuples(st.just("days"), st.integers(1, 200)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=operations,
    pending=st.sampled_from([0, 10]),
    window=st.sampled_from(["rolling_12_months", "calendar_year"]),
    zone=st.sampled_from(ZONES),
    probes=st.lists(st.integers(1, 24 * 400), max_size=4),
)
# A refund a few hours after the purchase, then the window's first day cut between them.
@example(
    ops=[("earn", 300), ("hours", 5), ("refund", 100), ("days", 365), ("earn", 1)],
    pending=0,
    window="rolling_12_months",
    zone="Pacific/Kiritimati",
    probes=[2, 3, 4, 5, 6, 26],
)
# Pending points released (and counted) on a later day than their purchase.
@example(
    ops=[("earn", 200), ("days", 11), ("expire", 0), ("earn", 5)],
    pending=10,
    window="calendar_year",
    zone="America/Adak",
    probes=[24 * 11, 24 * 365],
)
async def test_the_standing_from_the_rollup_equals_the_sum_over_the_ledger(ops, pending, window, zone, probes):
    clock.reset()
    p = program(window, zone, pending)
    m = await new_member(p)
    receipts: list[tuple[str, Decimal]] = []
    for i, (op, n) in enumerate(ops):
        await ledger_step(p, m, receipts, i, op, n)
        await assert_standing_is_the_ledger_sum(p, m, probes)
    assert await rollup_matches_entries()


async def test_the_migration_backfills_the_rollup_from_the_ledger():
    p = program("rolling_12_months", "UTC", 0)
    a, b = await new_member(p), await new_member(p)
    await buy(p, a, "A-1", "40")
    clock.advance(timedelta(days=3))
    await buy(p, a, "A-2", "7")
    await buy(p, b, "B-1", "12")
    await purchases.refund(p, external_id="A-2", amount=Decimal("7"))
    await rollups_rebuilt()
    assert await rollup_matches_entries()
    assert (await tiers.standing(None, p, a, clock.now())).qualifying == 40  # the refund took A-2's 7 back
    assert (await tiers.standing(None, p, b, clock.now())).qualifying == 12
