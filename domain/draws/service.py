"""Draws: a points lottery. Members buy entries with points (REDEEM entries on the ledger)
until the closing time; the worker then records a seed, draws the winners from it, gives
each a coupon and a push, and publishes the seed so that anyone can re-run the draw
(`pick_winners`). A cancelled draw gives every entry's points back, once.

Locks, always in this order: the draw's row (FOR SHARE to enter, FOR UPDATE to close,
draw or cancel), then members' wallets (the ledger's lock, in primary-key order)."""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from domain import clock, text
from domain.draws import repository
from domain.draws.errors import AlreadyDrawn, DrawClosed, EntryCapReached
from domain.draws.repository import DrawRow
from domain.errors import InvalidInput, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.notifications import service as notifications
from domain.program.config import Program
from domain.rewards import service as rewards
from domain.wallets import ledger
from domain.wallets.errors import InsufficientPoints
from domain.wallets.expiry import expires_at

MAX_WINNERS = 1000
MAX_ENTRY_COST = 10_000_000
MAX_ENTRIES_PER_MEMBER = 1000
REFUND_BATCH = 500  # members whose wallets one statement locks while refunding


def pick_winners(seed: str, entry_ids: Sequence[int], n: int) -> list[int]:
    """The winning entries, in the order drawn: the entry numbers sorted ascending, then
    Python's `random.Random(seed).sample(entries, min(n, len(entries)))` (the seed string
    is hashed with SHA-512 into the Mersenne Twister's state: the same on every Python
    since 3.2). Each entry is a ticket: a member with more entries has more chances, and
    may win more than one prize. Anyone with the published seed and entry numbers gets
    the same winners:

        python3 -c 'import random; print(random.Random(SEED).sample(sorted(ENTRIES), N))'
    """
    ordered = sorted(entry_ids)
    return random.Random(seed).sample(ordered, min(n, len(ordered)))


@dataclass(frozen=True)
class Entered:
    draw: DrawRow
    wallet: ledger.WalletRow


async def create(
    *,
    prize: str,
    description: str = "",
    winners: int,
    entry_cost: int,
    max_entries_per_member: int,
    closes_at: datetime,
    coupon_valid_days: int = 30,
    by: str,
) -> DrawRow:
    prize = text.name(prize, "prize", what="A prize")
    if len(description) > 500:
        raise InvalidInput("A description has at most 500 characters.", field="description")
    if not 1 <= winners <= MAX_WINNERS:
        raise InvalidInput(f"winners must be between 1 and {MAX_WINNERS}.", field="winners")
    if not 1 <= entry_cost <= MAX_ENTRY_COST:
        raise InvalidInput(f"entryCost must be between 1 and {MAX_ENTRY_COST:,} points.", field="entryCost")
    if not 1 <= max_entries_per_member <= MAX_ENTRIES_PER_MEMBER:
        raise InvalidInput(
            f"maxEntriesPerMember must be between 1 and {MAX_ENTRIES_PER_MEMBER}.", field="maxEntriesPerMember"
        )
    now = clock.now()
    if closes_at.tzinfo is None:
        raise InvalidInput("closesAt needs a time zone (an offset or Z).", field="closesAt")
    if closes_at <= now:
        raise InvalidInput("closesAt must be in the future.", field="closesAt")
    async with in_transaction() as conn:
        reward = await rewards.create_prize(
            conn, name=prize, description=description, coupon_valid_days=coupon_valid_days
        )
        row = DrawRow(
            id=uuid.uuid4(),
            prize=prize,
            description=description,
            winners=winners,
            entry_cost=entry_cost,
            max_entries_per_member=max_entries_per_member,
            closes_at=closes_at,
            state="OPEN",
            seed=None,
            reward_id=reward.id,
            created_at=now,
            drawn_at=None,
        )
        await repository.insert_draw(conn, row, by)
    return row


async def enter(*, member_id: uuid.UUID, draw_id: uuid.UUID, idempotency_key: str) -> Entered:
    """One entry, paid in points. The same key again answers as the first time; the cap
    per member holds however many requests race, because each member's entries are
    counted and written under the lock of that member's wallet."""
    key = valid_key(idempotency_key, "idempotencyKey")
    now = clock.now()
    async with in_transaction() as conn:
        draw = await repository.lock(conn, draw_id, share=True)
        if draw is None:
            raise NotFound("No draw with this id.", field="drawId")
        wallet = (await ledger.lock(conn, member_id, (ledger.POINTS,), now))[ledger.POINTS]
        done = await repository.entry_by_key(conn, member_id, key)
        if done is not None:
            if done.draw_id != draw_id:
                raise IdempotencyConflict("This idempotencyKey was used for another draw.", field="idempotencyKey")
            return Entered(draw, wallet.row())
        if draw.state == "CANCELLED":
            raise DrawClosed("This draw was cancelled.", field="drawId")
        if draw.state != "OPEN" or draw.closes_at <= now:
            raise DrawClosed(f"This draw closed at {draw.closes_at.isoformat()}.", field="drawId")
        held = await repository.entries_of_member(conn, draw_id, member_id)
        if held >= draw.max_entries_per_member:
            raise EntryCapReached(f"You hold {held} entries: the most this draw allows one member.", field="drawId")
        if wallet.balance < draw.entry_cost:
            raise InsufficientPoints(
                f"An entry costs {draw.entry_cost} points; you have {wallet.balance}.", field="drawId"
            )
        paid = await ledger.debit(
            conn,
            wallet,
            draw.entry_cost,
            kind="REDEEM",
            now=now,
            description=f"Draw entry: {draw.prize}"[:200],
            explanation={"rule": "draw", "draw": str(draw.id)},
        )
        assert paid is not None
        await repository.insert_entry(conn, draw_id, member_id, key, paid.id, now)
        return Entered(draw, wallet.row())


async def cancel(program: Program, draw_id: uuid.UUID) -> DrawRow:
    """Cancel a draw not drawn yet and give every entry's points back: one REDEEM credit
    per entry, with a dedupe key of its own, so an entry is refunded once however often
    (or however concurrently) the draw is cancelled. Cancelling again answers the same."""
    now = clock.now()
    async with in_transaction() as conn:
        draw = await repository.lock(conn, draw_id)
        if draw is None:
            raise NotFound("No draw with this id.", field="drawId")
        if draw.state == "DRAWN":
            raise AlreadyDrawn("This draw was drawn already: its winners have their prizes.", field="drawId")
        if draw.state != "CANCELLED":
            await repository.mark_cancelled(conn, draw_id, now)
        due = await repository.entries(conn, draw_id, unrefunded=True)
        members = sorted({e.member_id for e in due})
        for i in range(0, len(members), REFUND_BATCH):
            batch = members[i : i + REFUND_BATCH]
            wallets = await ledger.lock_members(conn, batch, (ledger.POINTS,), now)
            for entry in (e for e in due if e.member_id in wallets):
                back = await ledger.credit(
                    conn,
                    wallets[entry.member_id][ledger.POINTS],
                    draw.entry_cost,
                    kind="REDEEM",
                    now=now,
                    expires_at=expires_at(program, now),
                    description=f"Draw cancelled: {draw.prize}"[:200],
                    explanation={"rule": "draw refund", "draw": str(draw.id)},
                    dedupe_key=f"draw-refund:{entry.id}",
                )
                if back is not None:
                    await repository.mark_refunded(conn, entry.id, back.id)
    return await _found(draw_id, None)


async def draw_due(program: Program) -> int:
    """The worker's job: draw every draw whose closing time has passed. Two steps, each
    committed: record the seed (and stop entries), then draw from the recorded seed. A run
    that stops between them leaves the seed, and the next run draws from it."""
    drawn = 0
    for draw_id in await repository.due(clock.now()):
        async with in_transaction() as conn:
            draw = await repository.lock(conn, draw_id)
            if draw is not None and draw.state == "OPEN":
                await repository.close(conn, draw_id, secrets.token_hex(16))
        drawn += await _draw(draw_id)
    return drawn


async def _draw(draw_id: uuid.UUID) -> int:
    now = clock.now()
    async with in_transaction() as conn:
        draw = await repository.lock(conn, draw_id)
        if draw is None or draw.state != "CLOSED" or draw.seed is None:
            return 0  # drawn or cancelled meanwhile
        entries = {e.id: e for e in await repository.entries(conn, draw_id)}
        for number in pick_winners(draw.seed, list(entries), draw.winners):
            winner = entries[number].member_id
            coupon = await rewards.issue_prize_coupon(
                conn, member_id=winner, reward_id=draw.reward_id, key=f"draw:{draw.id}:{number}"
            )
            await repository.mark_won(conn, number, coupon.id)
            await notifications.enqueue(
                winner,
                kind="DRAW_WON",  # transactional: the member entered (notifications/policy.py)
                title="You won!"[:120],
                body=f"Your entry {number} won {draw.prize}. Show coupon {coupon.code} at the till.",
                dedupe_key=f"draw-won:{number}",
                due_at=now,
                data={"drawId": str(draw.id), "couponId": str(coupon.id)},
                conn=conn,
            )
        await repository.mark_drawn(conn, draw_id, now)
        return 1


async def _found(draw_id: uuid.UUID, member_id: uuid.UUID | None) -> DrawRow:
    row = await repository.find(draw_id, member_id)
    assert row is not None
    return row


async def find(draw_id: uuid.UUID, member_id: uuid.UUID | None) -> DrawRow | None:
    """A draw with its entry count and, for a member, their own entries."""
    return await repository.find(draw_id, member_id)


async def open_draws(member_id: uuid.UUID | None, limit: int, after: tuple[datetime, uuid.UUID] | None):
    return await repository.open_draws(member_id, clock.now(), limit, after)


async def all_draws(limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[DrawRow]:
    """Every draw whatever its state (a marketer's list), by closing time."""
    return await repository.all_draws(limit, after)


async def winning_entries(draw_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    return await repository.winning_entries(draw_ids)


async def entry_numbers(draw_id: uuid.UUID) -> list[int]:
    return await repository.entry_numbers(draw_id)
