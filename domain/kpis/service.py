"""The program's KPIs over a period: each area sums its own tables (one SQL aggregate
each, run side by side), and this module only divides. Definitions: README, "KPIs"."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from domain.errors import InvalidInput, NotFound
from domain.members import service as members
from domain.program.config import Program
from domain.purchases import service as purchases
from domain.segments import service as segments
from domain.wallets import service as wallets

MAX_DAYS = 3660  # ten years: beyond that a period says nothing a marketer can act on
# A member who keeps coming back 9 periods in 10 is expected to stay 10 periods; above
# that the estimate would grow without bound on a few loyal members, so it stops there.
MAX_RETENTION = Decimal("0.9")


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from the first day's midnight to the midnight after the last
    day, in the program's time zone; `before` starts the period of equal length before it."""

    before: datetime
    start: datetime
    end: datetime


def period(program: Program, first: date, last: date) -> Period:
    if last < first:
        raise InvalidInput("`to` must not be before `from`.", field="to")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"A period spans at most {MAX_DAYS} days.", field="to")
    zone = program.zone
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(last + timedelta(days=1), time(0), zone)
    return Period(before=start - (end - start), start=start, end=end)


@dataclass(frozen=True)
class Kpis:
    active_members: int
    new_members: int
    retention_rate: float | None
    repeat_purchase_rate: float | None
    average_order_value: Decimal | None
    customer_lifetime_value: Decimal | None
    redemption_rate: float | None
    points_issued: int
    points_redeemed: int
    points_expired: int
    points_liability: int
    points_liability_value: Decimal


def _rate(part: int, whole: int) -> float | None:
    """part / whole to 4 decimals; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def _money(program: Program, amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-program.currency_decimals), rounding=ROUND_HALF_EVEN)


async def program_kpis(
    program: Program, first: date, last: date, *, members_among: Sequence[uuid.UUID] | None = None
) -> Kpis:
    """The KPIs of [first, last] (the program's days), over every member or over
    `members_among` (a tier's members, a segment's)."""
    p = period(program, first, last)
    bought, flow, joined, held = await asyncio.gather(
        purchases.activity(p.before, p.start, p.end, members_among),
        wallets.points_flow(p.start, p.end, members_among),
        members.joined_between(p.start, p.end, members_among),
        wallets.points_held(members_among),
    )
    retention = _rate(bought.retained, bought.active_before)
    aov = _money(program, bought.net_sales / bought.orders) if bought.orders else None
    clv = None
    if bought.active:
        # Net spend per active member in the period, times the periods a member is expected
        # to stay: 1 / (1 - retention) (a geometric lifetime); unknown retention: one period.
        kept = min(Decimal(str(retention)) if retention is not None else Decimal(0), MAX_RETENTION)
        clv = _money(program, bought.net_sales / bought.active / (1 - kept))
    return Kpis(
        active_members=bought.active,
        new_members=joined,
        retention_rate=retention,
        repeat_purchase_rate=_rate(bought.repeaters, bought.active),
        average_order_value=aov,
        customer_lifetime_value=clv,
        redemption_rate=_rate(flow.redeemed, flow.issued),
        points_issued=flow.issued,
        points_redeemed=flow.redeemed,
        points_expired=flow.expired,
        points_liability=held,
        points_liability_value=_money(program, held * program.program.point_value),
    )


async def group_kpis(
    program: Program, first: date, last: date, *, tier_key: str | None = None, segment_key: str | None = None
) -> Kpis:
    """The KPIs of the members who hold a tier now, who are in a segment now (as the last
    recomputation left it), or both: the members in both."""
    if tier_key is not None and program.tier(tier_key) is None:
        raise InvalidInput(f"No tier {tier_key[:32]!r} in this program.", field="tierId")
    if segment_key is not None and not await segments.existing_keys([segment_key]):
        raise NotFound(f"No segment {segment_key[:40]!r}.", field="segmentKey")
    period(program, first, last)  # a bad period is refused before the members are read
    among: set[uuid.UUID] | None = None
    if tier_key is not None:
        among = set(await members.ids_in_tier(tier_key))
    if segment_key is not None:
        in_segment = set(await segments.members_of([segment_key]))
        among = in_segment if among is None else among & in_segment
    return await program_kpis(program, first, last, members_among=sorted(among or ()))
