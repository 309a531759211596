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
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.errors import NotFound
from domain.program.config import Program
from domain.wallets.errors import InsufficientPoints

POINTS = "POINTS"
CASHBACK = "CASHBACK"


def wallet_kinds(program: Program) -> tuple[str, ...]:
    return (POINTS, CASHBACK) if program.cashback.enabled else (POINTS,)


@dataclass
class WalletRow:
    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    balance: int
    pending: int


@dataclass(frozen=True)
class Entry:
    id: int
    wallet_id: uuid.UUID
    kind: str
    amount: int
    balance_after: int


async def lock(
    conn: BaseDBAsyncClient, member_id: uuid.UUID, kinds: tuple[str, ...], now: datetime
) -> dict[str, WalletRow]:
    """Lock the member's wallets (creating missing ones) for the rest of the transaction.
    Pending points whose return window has passed are released first, so whatever
    the caller does next sees them as spendable."""
    return (await lock_members(conn, [member_id], kinds, now))[member_id]


async def lock_members(
    conn: BaseDBAsyncClient, member_ids: list[uuid.UUID], kinds: tuple[str, ...], now: datetime
) -> dict[uuid.UUID, dict[str, WalletRow]]:
    """`lock` for several members at once (a referral credits two), all in
    primary-key order so that two such transactions cannot deadlock."""
    rows = await _locked(conn, member_ids)
    released = [m for m in member_ids if any(w.pending for w in rows.get(m, {}).values())]
    if released and any([await release_due(conn, now, m) for m in released]):
        rows = await _locked(conn, member_ids)
    missing = [m for m in member_ids if any(k not in rows.get(m, {}) for k in kinds)]
    if missing:
        found = await conn.execute_query_dict("SELECT id FROM members WHERE id = ANY($1::uuid[])", [missing])
        if len(found) != len(set(missing)):
            raise NotFound("No member with this id.", field="memberId")
        for member_id in sorted(missing):
            for kind in kinds:
                await conn.execute_query(
                    "INSERT INTO wallets (id, member_id, kind, balance, pending, updated_at) "
                    "VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (member_id, kind) DO NOTHING",
                    [uuid.uuid4(), member_id, kind, now],
                )
        rows = await _locked(conn, member_ids)
    return rows


async def _locked(conn: BaseDBAsyncClient, member_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, WalletRow]]:
    rows = await conn.execute_query_dict(
        "SELECT id, member_id, kind, balance, pending FROM wallets WHERE member_id = ANY($1::uuid[])"
        " ORDER BY id FOR UPDATE",
        [member_ids],
    )
    out: dict[uuid.UUID, dict[str, WalletRow]] = {m: {} for m in member_ids}
    for r in rows:
        out[r["member_id"]][r["kind"]] = WalletRow(**r)
    return out


async def credit(
    conn: BaseDBAsyncClient,
    wallet: WalletRow,
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
) -> Entry | None:
    """Credit `amount` in a new lot. Available now: an entry and the balance move;
    available later (a return window): the lot waits as pending. Returns the entry,
    or None when pending or when `dedupe_key` was credited before."""
    if amount <= 0:
        return None
    details = json.dumps(explanation or {})
    if available_at is not None and available_at > now:
        # One statement: the pending lot, the wallet's pending total, the event.
        await conn.execute_query(
            """
            WITH lot AS (
                INSERT INTO lots (wallet_id, amount, remaining, state, earned_at, available_at, expires_at,
                                  purchase_id, description, explanation, qualifying)
                VALUES ($1, $2, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9)
            ), moved AS (
                UPDATE wallets SET pending = pending + $2, updated_at = $3 WHERE id = $1
            )
            INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
            VALUES ($10, $1, NULL, 'WALLET_UPDATED', $3, $11, $12)
            """,
            [
                wallet.id,
                amount,
                now,
                available_at,
                expires_at,
                purchase_id,
                description[:200],
                details,
                qualifying,
                wallet.member_id,
                wallet.balance,
                wallet.pending + amount,
            ],
        )
        wallet.pending += amount
        return None
    # One statement: the entry (unless its dedupe key exists), its lot, the balance, the event.
    rows = await conn.execute_query_dict(
        """
        WITH entry AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, purchase_id, dedupe_key, occurred_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        ), lot AS (
            INSERT INTO lots (wallet_id, amount, remaining, state, earned_at, available_at, expires_at,
                              purchase_id, description, explanation, qualifying)
            SELECT $1, $4, $4, 'AVAILABLE', $11, $11, $12, $9, $7, $8, $6 FROM entry
        ), moved AS (
            UPDATE wallets SET balance = balance + $4, updated_at = $11 WHERE id = $1 AND EXISTS (SELECT 1 FROM entry)
        ), event AS (
            INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
            SELECT $2, $1, id, 'WALLET_UPDATED', $11, $5, $13 FROM entry
        )
        SELECT id FROM entry
        """,
        [
            wallet.id,
            wallet.member_id,
            kind,
            amount,
            wallet.balance + amount,
            qualifying,
            description[:200],
            details,
            purchase_id,
            dedupe_key,
            now,
            expires_at,
            wallet.pending,
        ],
    )
    if not rows:
        return None
    wallet.balance += amount
    return Entry(rows[0]["id"], wallet.id, kind, amount, wallet.balance)


async def debit(
    conn: BaseDBAsyncClient,
    wallet: WalletRow,
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
    # One statement: the entry, the balance, the event, and the lots consumed in
    # expiry order (each lot gives what is left of `amount` after the lots before
    # it). No row locks on lots are needed: we hold the wallet lock.
    rows = await conn.execute_query_dict(
        """
        WITH entry AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, purchase_id, dedupe_key, occurred_at)
            VALUES ($1, $2, $3, -$4::bigint, $5, $6, $7, $8, $9, $10, $11)
            ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        ), ordered AS (
            SELECT id, remaining,
                   SUM(remaining) OVER (ORDER BY expires_at NULLS LAST, id) - remaining AS before
            FROM lots WHERE wallet_id = $1 AND state = 'AVAILABLE' AND remaining > 0
        ), consumed AS (
            UPDATE lots SET remaining = lots.remaining - LEAST(lots.remaining, $4 - o.before)
            FROM ordered o WHERE lots.id = o.id AND o.before < $4 AND EXISTS (SELECT 1 FROM entry)
        ), moved AS (
            UPDATE wallets SET balance = balance - $4, updated_at = $11 WHERE id = $1 AND EXISTS (SELECT 1 FROM entry)
        ), event AS (
            INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
            SELECT $2, $1, id, 'WALLET_UPDATED', $11, $5, $12 FROM entry
        )
        SELECT id FROM entry
        """,
        [
            wallet.id,
            wallet.member_id,
            kind,
            amount,
            wallet.balance - amount,
            qualifying,
            description[:200],
            json.dumps(explanation or {}),
            purchase_id,
            dedupe_key,
            now,
            wallet.pending,
        ],
    )
    if not rows:
        return None
    wallet.balance -= amount
    return Entry(rows[0]["id"], wallet.id, kind, -amount, wallet.balance)


async def record_event(conn: BaseDBAsyncClient, wallet: WalletRow, entry_id: int | None, now: datetime) -> None:
    """The outbox row that live updates deliver once the transaction commits."""
    await conn.execute_query(
        "INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)"
        " VALUES ($1, $2, $3, 'WALLET_UPDATED', $4, $5, $6)",
        [wallet.member_id, wallet.id, entry_id, now, wallet.balance, wallet.pending],
    )


async def cancel_pending(
    conn: BaseDBAsyncClient, wallet: WalletRow, purchase_id: uuid.UUID, amount: int, now: datetime
) -> int:
    """Take up to `amount` back from this purchase's still-pending lots; returns how much."""
    rows = await conn.execute_query_dict(
        """
        WITH ordered AS (
            SELECT id, remaining, SUM(remaining) OVER (ORDER BY id) - remaining AS before
            FROM lots WHERE wallet_id = $1 AND purchase_id = $2 AND state = 'PENDING'
        )
        UPDATE lots SET remaining = lots.remaining - LEAST(lots.remaining, $3 - o.before),
                        state = CASE WHEN lots.remaining <= $3 - o.before THEN 'CANCELLED' ELSE 'PENDING' END
        FROM ordered o WHERE lots.id = o.id AND o.before < $3
        RETURNING LEAST(o.remaining, $3 - o.before) AS taken
        """,
        [wallet.id, purchase_id, amount],
    )
    taken = sum(r["taken"] for r in rows)
    if taken:
        await conn.execute_query(
            "UPDATE wallets SET pending = pending - $2, updated_at = $3 WHERE id = $1", [wallet.id, taken, now]
        )
        wallet.pending -= taken
        await record_event(conn, wallet, None, now)
    return taken


async def _lock_wallets_with(conn: BaseDBAsyncClient, lots_condition: str, params: list) -> list[uuid.UUID]:
    """Lock, in primary-key order, the wallets that have lots matching the condition."""
    rows = await conn.execute_query_dict(
        f"SELECT id FROM wallets WHERE id IN (SELECT wallet_id FROM lots WHERE {lots_condition})"
        " ORDER BY id FOR UPDATE",
        params,
    )
    return [r["id"] for r in rows]


async def release_due(conn: BaseDBAsyncClient, now: datetime, member_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    """Pending lots whose return window has passed become spendable: one EARN entry
    per lot, in one set-based statement. Returns the members whose balance moved."""
    condition = "state = 'PENDING' AND remaining > 0 AND available_at <= $1"
    params: list = [now]
    if member_id is not None:
        condition += " AND wallet_id IN (SELECT id FROM wallets WHERE member_id = $2)"
        params.append(member_id)
    wallet_ids = await _lock_wallets_with(conn, condition, params)
    if not wallet_ids:
        return []
    rows = await conn.execute_query_dict(
        """
        WITH due AS (
            UPDATE lots SET state = 'AVAILABLE'
            WHERE state = 'PENDING' AND remaining > 0 AND available_at <= $1 AND wallet_id = ANY($2::uuid[])
            RETURNING id, wallet_id, remaining, purchase_id, description, explanation, qualifying
        ), ranked AS (
            SELECT due.*, w.member_id,
                   w.balance + SUM(due.remaining) OVER (PARTITION BY due.wallet_id ORDER BY due.id) AS balance_after
            FROM due JOIN wallets w ON w.id = due.wallet_id
        ), entries AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, purchase_id, occurred_at)
            SELECT wallet_id, member_id, 'EARN', remaining, balance_after, qualifying,
                   description, explanation, purchase_id, $1
            FROM ranked ORDER BY wallet_id, id
            RETURNING id, wallet_id, member_id, balance_after
        ), totals AS (
            SELECT wallet_id, SUM(remaining) AS amount FROM due GROUP BY wallet_id
        ), moved AS (
            UPDATE wallets SET balance = balance + t.amount, pending = pending - t.amount, updated_at = $1
            FROM totals t WHERE wallets.id = t.wallet_id RETURNING wallets.id
        )
        INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
        SELECT e.member_id, e.wallet_id, e.id, 'WALLET_UPDATED', $1, e.balance_after,
               w.pending - (e.balance_after - w.balance)  -- still pending after this lot
        FROM entries e JOIN wallets w ON w.id = e.wallet_id ORDER BY e.id
        RETURNING member_id
        """,
        [now, wallet_ids],
    )
    return sorted({r["member_id"] for r in rows})


async def expire_due(conn: BaseDBAsyncClient, now: datetime) -> int:
    """What is left of past-due lots expires: one EXPIRE entry per wallet, in one
    set-based statement. Running it again finds nothing left. Returns points expired."""
    condition = "state = 'AVAILABLE' AND remaining > 0 AND expires_at <= $1"
    wallet_ids = await _lock_wallets_with(conn, condition, [now])
    if not wallet_ids:
        return 0
    rows = await conn.execute_query_dict(
        """
        WITH due AS (
            SELECT id, wallet_id, remaining FROM lots
            WHERE state = 'AVAILABLE' AND remaining > 0 AND expires_at <= $1 AND wallet_id = ANY($2::uuid[])
        ), gone AS (
            UPDATE lots SET remaining = 0 FROM due WHERE lots.id = due.id
            RETURNING due.wallet_id, due.remaining
        ), totals AS (
            SELECT wallet_id, SUM(remaining) AS amount FROM gone GROUP BY wallet_id
        ), moved AS (
            UPDATE wallets w SET balance = w.balance - t.amount, updated_at = $1
            FROM totals t WHERE w.id = t.wallet_id
            RETURNING w.id, w.member_id, w.kind, w.balance AS balance_after, w.pending, t.amount
        ), entries AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, occurred_at)
            SELECT id, member_id, 'EXPIRE', -amount, balance_after, 0,
                   amount || CASE WHEN kind = 'POINTS' THEN ' points expired' ELSE ' expired' END,
                   '{"rule": "expiry"}'::jsonb, $1
            FROM moved ORDER BY id
            RETURNING id, wallet_id, member_id, -amount AS amount, balance_after
        ), events AS (
            INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
            SELECT e.member_id, e.wallet_id, e.id, 'WALLET_UPDATED', $1, e.balance_after, m.pending
            FROM entries e JOIN moved m ON m.id = e.wallet_id
        )
        SELECT COALESCE(SUM(amount), 0) AS expired FROM entries
        """,
        [now, wallet_ids],
    )
    return int(rows[0]["expired"])
