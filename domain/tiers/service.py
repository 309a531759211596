"""Tier status: where a member stands and what the next tier takes.

Tiers sit above the wallets: qualifying points are ledger entries, and a tier
move takes the wallet lock like every other writer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock
from domain.program.config import Program, Tier, TierWindow
from domain.wallets import ledger


@dataclass(frozen=True)
class TierStatus:
    current: Tier
    next: Tier | None
    qualifying_points: int
    points_to_next_tier: int | None
    progress: float  # 0..1 towards `next`; 1.0 at the top tier
    period_ends_at: datetime | None


def tier_for(program: Program, qualifying_points: int) -> Tier:
    """The highest tier whose threshold the points reach; the entry tier below every
    threshold (a refund can stay in the window after the purchase it takes back has
    left it, so the window's sum can be negative)."""
    reached = [t for t in program.tiers if t.threshold <= qualifying_points]
    return reached[-1] if reached else program.entry_tier


def period_end(program: Program, now: datetime) -> datetime | None:
    """When the qualifying window closes; a rolling window never closes as a whole."""
    if program.tier_rules.window is TierWindow.CALENDAR_YEAR:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return None


def status_of(program: Program, qualifying_points: int, now: datetime) -> TierStatus:
    current = tier_for(program, qualifying_points)
    higher = [t for t in program.tiers if t.rank > current.rank]
    nxt = higher[0] if higher else None
    if nxt is None:
        return TierStatus(current, None, qualifying_points, None, 1.0, period_end(program, now))
    span = nxt.threshold - current.threshold
    progress = min(1.0, max(0.0, (qualifying_points - current.threshold) / span))
    return TierStatus(
        current=current,
        next=nxt,
        qualifying_points=qualifying_points,
        points_to_next_tier=nxt.threshold - qualifying_points,
        progress=round(progress, 4),
        period_ends_at=period_end(program, now),
    )


def window_start(program: Program, now: datetime) -> datetime:
    """Qualifying points count from this moment on."""
    if program.tier_rules.window is TierWindow.CALENDAR_YEAR:
        local = now.astimezone(program.zone)
        return datetime(local.year, 1, 1, tzinfo=program.zone)
    return now - timedelta(days=365)


async def qualifying_points(conn: BaseDBAsyncClient, program: Program, member_id: uuid.UUID, now: datetime) -> int:
    rows = await conn.execute_query_dict(
        "SELECT COALESCE(SUM(qualifying), 0) AS q FROM ledger_entries WHERE member_id = $1 AND occurred_at > $2",
        [member_id, window_start(program, now)],
    )
    return max(0, int(rows[0]["q"]))


async def move(conn: BaseDBAsyncClient, member_id: uuid.UUID, tier: Tier, now: datetime) -> None:
    await conn.execute_query(
        "UPDATE members SET tier_key = $2, tier_changed_at = $3 WHERE id = $1", [member_id, tier.key, now]
    )
    await conn.execute_query(
        "INSERT INTO wallet_events (member_id, kind, created_at) VALUES ($1, 'TIER_CHANGED', $2)", [member_id, now]
    )


def current_tier(program: Program, tier_key: str) -> Tier:
    return program.tier(tier_key) or program.entry_tier


def upgrade_for(program: Program, tier_key: str, qualifying: int) -> Tier | None:
    """The higher tier these qualifying points reach, if any."""
    reached = tier_for(program, qualifying)
    return reached if reached.rank > current_tier(program, tier_key).rank else None


async def upgrade_if_reached(
    conn: BaseDBAsyncClient, program: Program, member_id: uuid.UUID, tier_key: str, now: datetime
) -> Tier | None:
    """Move the member up at once when their qualifying points cross a threshold."""
    reached = upgrade_for(program, tier_key, await qualifying_points(conn, program, member_id, now))
    if reached is not None:
        await move(conn, member_id, reached, now)
    return reached


def requalified(program: Program, current: Tier, qualifying: int) -> Tier:
    """The tier after a period closes: up to what the points reach, or down by at
    most one tier when they fall short (a bad year costs one step, not three)."""
    reached = tier_for(program, qualifying)
    if reached.rank >= current.rank:
        return reached
    below = [t for t in program.tiers if t.rank < current.rank]
    return below[-1] if below else current


async def requalify(conn: BaseDBAsyncClient, program: Program, member_id: uuid.UUID, now: datetime) -> Tier | None:
    """Apply `requalified` to one member (the worker runs it at period end)."""
    # The wallet lock orders this member's events like every other writer's.
    await ledger.lock(conn, member_id, (ledger.POINTS,), now)
    rows = await conn.execute_query_dict("SELECT tier_key FROM members WHERE id = $1 FOR UPDATE", [member_id])
    if not rows:
        return None
    current = current_tier(program, rows[0]["tier_key"])
    new = requalified(program, current, await qualifying_points(conn, program, member_id, now))
    if new.key != current.key:
        await move(conn, member_id, new, now)
        return new
    # Kept: a new period starts now.
    await conn.execute_query("UPDATE members SET tier_changed_at = $2 WHERE id = $1", [member_id, now])
    return None


async def requalify_due(program: Program, now: datetime) -> int:
    """Requalify every member whose tier period has closed: the calendar year has
    turned, or (rolling window) a year has passed since their tier last changed.
    Returns how many moved."""
    if program.tier_rules.window is TierWindow.CALENDAR_YEAR:
        boundary = window_start(program, now)
    else:
        boundary = now - timedelta(days=365)
    rows = await connections.get("default").execute_query_dict(
        "SELECT id FROM members WHERE COALESCE(tier_changed_at, created_at) < $1 ORDER BY id", [boundary]
    )
    moved = 0
    for row in rows:  # one short transaction each: a member at a time, never a long lock
        async with in_transaction() as conn:
            moved += await requalify(conn, program, row["id"], now) is not None
    return moved


async def status_for(program: Program, member_id: uuid.UUID, tier_key: str, now: datetime) -> TierStatus:
    """The member's tier status: the tier they hold (not lowered mid-period) and
    progress from their qualifying points."""
    qualifying = await qualifying_points(connections.get("default"), program, member_id, now)
    held = current_tier(program, tier_key)
    status = status_of(program, qualifying, now)
    if status.current.rank >= held.rank:
        return status
    # Points fell below the held tier's threshold within the period: still held.
    higher = [t for t in program.tiers if t.rank > held.rank]
    nxt = higher[0] if higher else None
    return TierStatus(
        current=held,
        next=nxt,
        qualifying_points=qualifying,
        points_to_next_tier=max(0, nxt.threshold - qualifying) if nxt else None,
        progress=round(min(1.0, qualifying / nxt.threshold), 4) if nxt else 1.0,
        period_ends_at=period_end(program, now),
    )


@dataclass(frozen=True)
class ExpiryRun:
    released_members: int
    expired: int


async def run_expiry(program: Program, now: datetime | None = None) -> ExpiryRun:
    """The daily pass: release pending points whose window passed, then expire
    past-due lots. Set-based; running it twice changes nothing the second time.
    It lives here, above the wallets, because released points can lift a tier:
    the member moves up in the transaction that releases them."""
    now = now or clock.now()
    async with in_transaction() as conn:
        released = await ledger.release_due(conn, now)
        for member_id in released:
            tier_key = await conn.execute_query_dict("SELECT tier_key FROM members WHERE id = $1", [member_id])
            await upgrade_if_reached(conn, program, member_id, tier_key[0]["tier_key"], now)
    async with in_transaction() as conn:
        expired = await ledger.expire_due(conn, now)
    return ExpiryRun(released_members=len(released), expired=expired)
