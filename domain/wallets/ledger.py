"""The ledger: every change of a wallet, exactly once, never below zero.

Rules every writer follows, so the invariants hold under any concurrency:
- lock the member's wallets first (`lock`, in primary-key order) and change lots,
  entries and balances only while holding that lock;
- a wallet's balance changes only together with an entry of the same amount, so
  balance == SUM(entries) == SUM(remaining of its AVAILABLE lots);
- the `CHECK (balance >= 0)` on wallets is the last line of defence.

Functions here take the open transaction (`conn`) of the use case that calls them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from domain import db
from domain.errors import NotFound
from domain.program.config import Program
from domain.wallets import repository
from domain.wallets.errors import InsufficientPoints
from domain.wallets.repository import WalletRow

POINTS = "POINTS"
CASHBACK = "CASHBACK"


def wallet_kinds(program: Program) -> tuple[str, ...]:
    return (POINTS, CASHBACK) if program.cashback.enabled else (POINTS,)


@dataclass
class Held:
    """A wallet as the transaction holding its lock sees it: balance and pending move
    with each write (the rows that leave the area are `row()` snapshots)."""

    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    balance: int
    pending: int

    def row(self) -> WalletRow:
        return WalletRow(self.id, self.member_id, self.kind, self.balance, self.pending)


@dataclass(frozen=True)
class Entry:
    id: int
    wallet_id: uuid.UUID
    kind: str
    amount: int
    balance_after: int


async def lock(conn: BaseDBAsyncClient, member_id: uuid.UUID, kinds: tuple[str, ...], now: datetime) -> dict[str, Held]:
    """Lock the member's wallets (creating missing ones) for the rest of the transaction.
    Pending points whose return window has passed are released first, so whatever
    the caller does next sees them as spendable."""
    return (await lock_members(conn, [member_id], kinds, now))[member_id]


def lock_statement(member_ids: list[uuid.UUID], also: db.Part | None = None) -> str:
    """`lock_members`'s lock as a statement for `db.in_transaction_with` (sent with BEGIN),
    for these members and the one `also` finds (a purchase's referrer), in one
    primary-key order. `held_part` reads what it locked; `settled` tells whether the
    wallets need `lock_members` after all (points to release, wallets to open)."""
    return repository.lock_statement(member_ids, also)


def held_part(member_ids: list[uuid.UUID], also: db.Part | None = None) -> db.Part:
    return repository.held_part(member_ids, also)


def held_of(row: dict, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Held]]:
    """The wallets `lock_statement` locked, by member (with the member `also` found)."""
    found, also = repository.held_of(row)
    return _held([*member_ids, *([also] if also else [])], found)


def settled(held: dict[uuid.UUID, dict[str, Held]], kinds: tuple[str, ...]) -> bool:
    """No pending points that may be due, no wallet missing: nothing `lock_members` would do."""
    return all(not w.pending for ws in held.values() for w in ws.values()) and all(
        k in ws for ws in held.values() for k in kinds
    )


async def lock_members(
    conn: BaseDBAsyncClient, member_ids: list[uuid.UUID], kinds: tuple[str, ...], now: datetime
) -> dict[uuid.UUID, dict[str, Held]]:
    """`lock` for several members at once (a referral credits two), all in
    primary-key order so that two such transactions cannot deadlock."""
    rows = await _locked(conn, member_ids)
    released = [m for m in member_ids if any(w.pending for w in rows.get(m, {}).values())]
    if released and any([(await release_due(conn, now, m)).members for m in released]):
        rows = await _locked(conn, member_ids)
    missing = [m for m in member_ids if any(k not in rows.get(m, {}) for k in kinds)]
    if missing:
        try:
            for member_id in sorted(missing):
                for kind in kinds:
                    await repository.open_wallet(conn, member_id, kind, now)
        except IntegrityError:  # the wallets' foreign key: the members area has no such member
            raise NotFound("No member with this id.", field="memberId") from None
        rows = await _locked(conn, member_ids)
    return rows


async def _locked(conn: BaseDBAsyncClient, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Held]]:
    return _held(member_ids, await repository.lock_wallets(conn, member_ids))


def _held(member_ids: list[uuid.UUID], found: list[WalletRow]) -> dict[uuid.UUID, dict[str, Held]]:
    out: dict[uuid.UUID, dict[str, Held]] = {m: {} for m in member_ids}
    for r in found:
        out[r.member_id][r.kind] = Held(r.id, r.member_id, r.kind, r.balance, r.pending)
    return out


@dataclass(frozen=True)
class Credit:
    """A credit as CTEs (`part`; None: nothing to write) for a statement that runs it, and
    what it adds to the wallet once that statement has written it."""

    part: db.Part | None
    wallet: Held
    balance: int = 0
    pending: int = 0

    def written(self) -> None:
        self.wallet.balance += self.balance
        self.wallet.pending += self.pending


def credit_part(
    wallet: Held,
    amount: int,
    *,
    kind: str,
    description: str,
    now: datetime,
    expires_at: datetime | None,
    available_at: datetime | None = None,
    explanation: dict | None = None,
    purchase_id: uuid.UUID | None = None,
    qualifying: int = 0,
    dedupe_key: str | None = None,
    extends_open_lots: bool = False,
    when: str = "true",
) -> Credit:
    """`credit`'s writes as CTEs, gated on the SQL condition `when` of the statement that
    carries them (a purchase's: its row is new). That statement's caller holds the wallet
    lock, and calls `written()` when it ran and `when` held."""
    extend = extends_open_lots and expires_at is not None
    if amount <= 0:  # the activity counts for an inactivity policy even when a cap left it nothing
        return Credit(repository.extend_part(wallet.id, expires_at, when) if extend else None, wallet)
    details = json.dumps(explanation or {})
    if available_at is not None and available_at > now:
        lot = repository.pending_lot_part(
            wallet.row(),
            amount,
            now,
            available_at,
            expires_at,
            purchase_id,
            description[:200],
            details,
            qualifying,
            extend,
            when,
        )
        return Credit(lot, wallet, pending=amount)
    entry = repository.credit_part(
        wallet.row(),
        amount,
        kind,
        qualifying,
        description[:200],
        details,
        purchase_id,
        dedupe_key,
        now,
        expires_at,
        extend,
        when,
    )
    return Credit(entry, wallet, balance=amount)


async def credit(conn: BaseDBAsyncClient, wallet: Held, amount: int, *, kind: str, **details) -> Entry | None:
    """Credit `amount` in a new lot (see `credit_part` for the details taken). Available
    now: an entry and the balance move; available later (a return window): the lot waits
    as pending. Returns the entry, or None when pending or when `dedupe_key` was credited
    before. One statement: the entry, its lot, the balance, the event.

    `extends_open_lots` (an inactivity policy): the wallet's open lots that expire
    before `expires_at` expire then too, in the same statement."""
    written = credit_part(wallet, amount, kind=kind, **details)
    if written.part is None:
        return None
    if not written.balance:  # pending, or only the expiry extension
        await repository.write(conn, written.part)
        written.written()
        return None
    entry_id = await repository.insert_credit(conn, written.part)
    if entry_id is None:
        return None
    written.written()
    return Entry(entry_id, wallet.id, kind, amount, wallet.balance)


async def debit(
    conn: BaseDBAsyncClient,
    wallet: Held,
    amount: int,
    *,
    kind: str,
    description: str,
    now: datetime,
    explanation: dict | None = None,
    purchase_id: uuid.UUID | None = None,
    qualifying: int = 0,
    dedupe_key: str | None = None,
    partial: bool = False,
) -> Entry | None:
    """Take `amount` from the lots that expire first. Not enough: INSUFFICIENT_POINTS,
    or with `partial`, whatever is there (the caller records the shortfall)."""
    if amount > wallet.balance:
        if not partial:
            raise InsufficientPoints(f"This needs {amount} and the balance is {wallet.balance}.", field="points")
        amount = wallet.balance
    if amount <= 0:
        return None
    # One statement: the entry, the balance, the event, and the lots consumed in expiry order.
    entry_id = await repository.insert_debit(
        conn,
        wallet.row(),
        amount,
        kind,
        qualifying,
        description[:200],
        json.dumps(explanation or {}),
        purchase_id,
        dedupe_key,
        now,
    )
    if entry_id is None:
        return None
    wallet.balance -= amount
    return Entry(entry_id, wallet.id, kind, -amount, wallet.balance)


async def record_event(conn: BaseDBAsyncClient, wallet: Held, entry_id: int | None, now: datetime) -> None:
    """The outbox row that live updates deliver once the transaction commits."""
    await repository.insert_event(conn, wallet.row(), entry_id, now)


async def cancel_pending(
    conn: BaseDBAsyncClient, wallet: Held, purchase_id: uuid.UUID, amount: int, now: datetime
) -> int:
    """Take up to `amount` back from this purchase's still-pending lots; returns how much."""
    taken = await repository.cancel_pending_lots(conn, wallet.id, purchase_id, amount)
    if taken:
        await repository.less_pending(conn, wallet.id, taken, now)
        wallet.pending -= taken
        await record_event(conn, wallet, None, now)
    return taken


async def release_due(
    conn: BaseDBAsyncClient,
    now: datetime,
    member_id: uuid.UUID | None = None,
    *,
    after: uuid.UUID | None = None,
    limit: int | None = None,
) -> Batch:
    """Pending lots whose return window has passed become spendable: one EARN entry
    per lot, in one set-based statement. With `limit`: the next `limit` wallets after
    `after` only (one batch of the daily pass). Returns the members whose balance moved."""
    wallet_ids = await repository.lock_wallets_with_due_lots(
        conn, now, pending=True, member_id=member_id, after=after, limit=limit
    )
    members = await repository.release_lots(conn, now, wallet_ids) if wallet_ids else []
    return Batch(wallet_ids[-1] if wallet_ids else None, len(wallet_ids), members=members)


async def expire_due(
    conn: BaseDBAsyncClient, now: datetime, *, after: uuid.UUID | None = None, limit: int, bound: float | None = None
) -> Batch:
    """What is left of past-due lots expires, in the next `limit` wallets (in id order)
    after `after`: one EXPIRE entry per wallet, in one set-based statement. Running it
    again finds nothing left. The caller commits each batch: a wallet stays locked for
    one batch only, so a purchase on it waits at most that long. `bound`: the seconds
    after which the server cancels each of the batch's statements (`db.Cancelled`)."""
    await repository.relaxed_commit(conn, bound=bound)
    wallet_ids = await repository.lock_wallets_with_due_lots(conn, now, pending=False, after=after, limit=limit)
    expired = await repository.expire_lots(conn, now, wallet_ids) if wallet_ids else 0
    return Batch(wallet_ids[-1] if wallet_ids else None, len(wallet_ids), expired=expired)


@dataclass(frozen=True)
class Batch:
    """One batch of the daily pass: the last wallet it locked (the next batch starts
    after it; None: nothing was due), how many wallets, and what moved."""

    last: uuid.UUID | None
    wallets: int
    expired: int = 0
    members: list[uuid.UUID] = field(default_factory=list)
