"""Tier status: where a member stands and what the next tier takes.

Tiers sit above the wallets: qualifying points are ledger entries, and a tier
move takes the wallet lock like every other writer."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock, db
from domain.members import service as members
from domain.program.config import Program, Tier, TierWindow
from domain.tiers import repository
from domain.wallets import ledger
from domain.wallets import service as wallets


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


@dataclass(frozen=True)
class Standing:
    """Where a member stands: the tier they hold, their qualifying points in the window
    (negative when a refund outlives in the window the purchase it takes back) and, for a
    purchase, the purchase points earned in the program's day."""

    tier_key: str
    qualifying: int
    earned_today: int


def _window(program: Program, now: datetime, today: bool) -> tuple[datetime, tuple[datetime, datetime] | None]:
    """Where the qualifying window starts, and the program's day when `today` (the daily cap)."""
    day = None
    if today:
        midnight = now.astimezone(program.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        day = (midnight, midnight + timedelta(days=1))
    return window_start(program, now), day


def standing_part(program: Program, member_id: uuid.UUID, now: datetime, *, today: bool = False) -> db.Part:
    """`standing`'s statement as a part of another (the purchase's one read after its
    wallet lock); `standing_of` reads it back from that statement's row."""
    return repository.standing_part(member_id, *_window(program, now, today))


def standing_of(row: dict) -> Standing | None:
    return _standing(repository.standing_of(row))


def _standing(found: repository.StandingRow | None) -> Standing | None:
    return Standing(found.tier_key, found.qualifying, found.earned_today) if found else None


async def standing(
    conn: BaseDBAsyncClient | None, program: Program, member_id: uuid.UUID, now: datetime, *, today: bool = False
) -> Standing | None:
    """The one function that computes a member's standing (None: no such member), in one statement."""
    return _standing(
        await repository.standing(conn or connections.get("default"), member_id, *_window(program, now, today))
    )


async def qualifying_points(conn: BaseDBAsyncClient, program: Program, member_id: uuid.UUID, now: datetime) -> int:
    return _qualifying(await standing(conn, program, member_id, now))


def _qualifying(found: Standing | None) -> int:
    """What counts toward a tier: never below 0 (refunds can outweigh the window's earnings)."""
    return max(0, found.qualifying) if found else 0


async def move(conn: BaseDBAsyncClient, member_id: uuid.UUID, tier: Tier, now: datetime) -> None:
    await members.set_tier(conn, member_id, tier.key, now)
    await wallets.record_tier_change(conn, member_id, now)


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
    tier_key = await members.tier_key(conn, member_id, lock=True)
    if tier_key is None:
        return None
    current = current_tier(program, tier_key)
    new = requalified(program, current, await qualifying_points(conn, program, member_id, now))
    if new.key != current.key:
        await move(conn, member_id, new, now)
        return new
    # Kept: a new period starts now.
    await members.set_tier(conn, member_id, None, now)
    return None


async def requalify_due(program: Program, now: datetime) -> int:
    """Requalify every member whose tier period has closed: the calendar year has
    turned, or (rolling window) a year has passed since their tier last changed.
    Returns how many moved."""
    if program.tier_rules.window is TierWindow.CALENDAR_YEAR:
        boundary = window_start(program, now)
    else:
        boundary = now - timedelta(days=365)
    moved = 0
    for member_id in await members.due_for_requalification(boundary):
        # one short transaction each: a member at a time, never a long lock
        async with in_transaction() as conn:
            moved += await requalify(conn, program, member_id, now) is not None
    return moved


async def status_for(program: Program, member_id: uuid.UUID, tier_key: str, now: datetime) -> TierStatus:
    """The member's tier status: the tier they hold (not lowered mid-period) and
    progress from their qualifying points."""
    qualifying = await qualifying_points(connections.get("default"), program, member_id, now)
    return _status(program, tier_key, qualifying, now)


async def member_with_status(
    program: Program, member_id: uuid.UUID, now: datetime
) -> tuple[members.MemberRow, TierStatus] | None:
    """The member and their tier status in one statement (the app's launch query asks
    for both): `members.find` and `status_for` read together. None: no such member."""
    read = await db.read_together(
        connections.get("default"), members.find_part(member_id), standing_part(program, member_id, now)
    )
    row = members.found_in(read)
    if row is None:
        return None
    return row, _status(program, row.tier_key, _qualifying(standing_of(read)), now)


def _status(program: Program, tier_key: str, qualifying: int, now: datetime) -> TierStatus:
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
    batches: int = 0
    longest_batch: float = 0.0  # seconds: the longest any wallet stayed locked by the run
    cancelled: int = 0  # expiry batches the server cancelled at LOCK_SECONDS and retried smaller


# A batch aims at this many seconds of locks: short enough that a member buying a coffee
# while the daily pass runs waits a fraction of a second, long enough that commits and
# round trips stay a small part of the run (sized by what the previous batch took). Not
# under 100 wallets: a wallet's lots lie on pages of their own, so small batches read a
# page per lot and the run crawls (measured: 50-wallet batches on a loaded machine ran
# at a tenth of the pace of 500-wallet ones).
BATCH_SECONDS = 0.3
FIRST_BATCH = 500
MIN_BATCH = 100
MAX_BATCH = 20_000
# The most an expiry batch may keep a wallet locked: the server cancels each of its two
# statements past half of it (a load spike, a wallet held by a long purchase), the batch
# rolls back, releasing its locks, and is retried at half the size. At the smallest size
# it runs unbounded rather than never finish; so does a fixed `batch` (the caller chose it).
LOCK_SECONDS = 1.0


async def run_expiry(
    program: Program,
    now: datetime | None = None,
    *,
    batch: int | None = None,
    lock_seconds: float = LOCK_SECONDS,
) -> ExpiryRun:
    """The daily pass: release pending points whose window passed, then expire
    past-due lots. Set-based, in batches of wallets (in id order), each its own short
    transaction; running it twice changes nothing the second time. A fixed `batch`
    (wallets per batch) replaces the sizing by time. It lives here, above the wallets,
    because released points can lift a tier: the member moves up in the transaction
    that releases them."""
    now = now or clock.now()
    sizer = _Sizer(batch)
    released = 0
    after = None
    while True:
        with sizer.timed() as size:
            async with in_transaction() as conn:
                done = await ledger.release_due(conn, now, after=after, limit=size)
                for member_id in done.members:
                    tier_key = await members.tier_key(conn, member_id)
                    await upgrade_if_reached(conn, program, member_id, tier_key or "", now)
        released += len(done.members)
        if done.last is None:
            break
        after = done.last
    expired = 0
    after = None
    while True:
        with sizer.timed() as size:
            try:
                async with in_transaction() as conn:
                    # sized by time only: a fixed `batch` is the caller's own choice
                    bound = lock_seconds / 2 if batch is None and size > MIN_BATCH else None
                    done = await ledger.expire_due(conn, now, after=after, limit=size, bound=bound)
            except db.Cancelled:
                sizer.cancelled()
                continue
        expired += done.expired
        if done.last is None:
            break
        after = done.last
    return ExpiryRun(released, expired, sizer.batches, round(sizer.longest, 3), sizer.cancels)


class _Sizer:
    """Wallets per batch, from how long the last batch took (or fixed)."""

    def __init__(self, fixed: int | None) -> None:
        self.fixed = fixed
        self.size = fixed or FIRST_BATCH
        self.batches = 0
        self.longest = 0.0
        self.cancels = 0
        self._cancelled = False

    def cancelled(self) -> None:
        """The batch in hand was cancelled at its bound: the next one is half its size."""
        self._cancelled = True

    @contextmanager
    def timed(self):
        started = time.perf_counter()
        yield self.size
        took = time.perf_counter() - started
        self.batches += 1
        self.longest = max(self.longest, took)
        if self._cancelled:
            self._cancelled = False
            self.cancels += 1
            self.size = max(MIN_BATCH, self.size // 2)
        elif self.fixed is None:
            scaled = int(self.size * BATCH_SECONDS / max(took, 0.001))
            self.size = max(MIN_BATCH, min(MAX_BATCH, scaled, self.size * 3 // 2))  # grow gently: load varies
