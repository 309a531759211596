"""The wallets area's tables (wallets, ledger_entries, lots, wallet_events, and
qualifying_days: the entries' qualifying points per member and UTC day): the only
module that queries them. The ledger's writes stay one statement each (entry, lot,
balance and outbox event together); `domain.wallets.ledger` decides what to write and
holds the rules. Rows leave as frozen dataclasses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db


@dataclass(frozen=True, slots=True)
class WalletRow:
    id: uuid.UUID
    member_id: uuid.UUID
    kind: str  # POINTS | CASHBACK
    balance: int
    pending: int


@dataclass(frozen=True, slots=True)
class EntryRow:
    """A ledger entry as the history shows it."""

    id: int
    kind: str
    amount: int
    balance_after: int
    description: str
    # The rule that produced it, as stored (JSON text): decoded by whoever shows it; a
    # history page never asks, and decoding it for every entry was ~7 % of its CPU.
    explanation: str | dict | None
    occurred_at: datetime

    @classmethod
    def of(cls, r: dict, id_: str = "id", kind: str = "kind") -> EntryRow:
        return cls(
            r[id_],
            r[kind],
            int(r["amount"]),
            int(r["balance_after"]),
            r["description"],
            r["explanation"],
            r["occurred_at"],
        )


@dataclass(frozen=True, slots=True)
class OwnedEntry:
    """An entry with whose it is and in which kind of wallet (for a lookup by id)."""

    entry: EntryRow
    member_id: uuid.UUID
    wallet_kind: str


@dataclass(frozen=True, slots=True)
class EventRow:
    """An outbox row: the wallet as right after the change, and the entry for a balance change."""

    id: int
    kind: str
    member_id: uuid.UUID
    created_at: datetime
    wallet: WalletRow | None
    entry: EntryRow | None


@dataclass(frozen=True, slots=True)
class Expiring:
    amount: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityCounts:
    same: int  # entries with this dedupe key
    today: int
    ever: int


@dataclass(frozen=True, slots=True)
class ExpiringLots:
    """A member's POINTS that expire at one moment."""

    member_id: uuid.UUID
    expires_at: datetime
    amount: int


# --- the ledger's statements (the caller holds the wallet lock) -----------------------

# A CTE part of insert_credit's and insert_debit's statement (their $2 member, $11 time,
# $6 qualifying): the entry's qualifying points added to the member's UTC day in
# qualifying_days, the rollup a standing sums instead of the window's entries. Under the
# wallet lock, so a member's day row has one writer at a time.
_ROLLED = """
            INSERT INTO qualifying_days (member_id, day, qualifying)
            SELECT $2, ($11::timestamptz AT TIME ZONE 'UTC')::date, $6 FROM entry WHERE $6 <> 0
            ON CONFLICT (member_id, day) DO UPDATE SET qualifying = qualifying_days.qualifying + EXCLUDED.qualifying"""


async def lock_wallets(conn: BaseDBAsyncClient, member_ids: list[uuid.UUID]) -> list[WalletRow]:
    """The members' wallets, locked in primary-key order."""
    rows = await conn.execute_query_dict(
        "SELECT id, member_id, kind, balance, pending FROM wallets WHERE member_id = ANY($1::uuid[])"
        " ORDER BY id FOR UPDATE",
        [member_ids],
    )
    return [WalletRow(**r) for r in rows]


def lock_statement(member_ids: list[uuid.UUID], also: db.Part | None) -> str:
    """The members' wallets, and those of the member `also` finds (a part selecting at
    most one `member_id`: a purchase's referrer), locked in one primary-key order: a
    statement with no parameters, sent with the transaction's BEGIN; `held_part` reads them."""
    more = f" || ARRAY({db.inlined(also.sql, also.params)})" if also else ""
    return f"SELECT 1 FROM wallets WHERE member_id = ANY({db.literal(member_ids)}{more}) ORDER BY id FOR UPDATE"


def held_part(member_ids: list[uuid.UUID], also: db.Part | None) -> db.Part:
    """After `lock_statement`, as a part of the purchase's one read: the wallets it locked
    (`held_wallets`) and who `also` finds now (`also_member`)."""
    params: list = [member_ids]
    found = also.placed(params) if also else "SELECT NULL::uuid AS member_id WHERE false"
    return db.Part(
        f"SELECT (SELECT member_id FROM ({found}) a) AS also_member,"
        " (SELECT array_agg(ROW(w.id, w.member_id, w.kind, w.balance, w.pending) ORDER BY w.id) FROM wallets w"
        f" WHERE w.member_id = ANY($1::uuid[] || ARRAY(SELECT member_id FROM ({found}) a))) AS held_wallets",
        tuple(params),
    )


def held_of(row: dict) -> tuple[list[WalletRow], uuid.UUID | None]:
    """The wallets and the member `also` found, from a row that carried `held_part`."""
    return [WalletRow(*w) for w in row["held_wallets"] or ()], row["also_member"]


async def open_wallet(conn: BaseDBAsyncClient, member_id: uuid.UUID, kind: str, now: datetime) -> None:
    await conn.execute_query(
        "INSERT INTO wallets (id, member_id, kind, balance, pending, updated_at) "
        "VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (member_id, kind) DO NOTHING",
        [uuid.uuid4(), member_id, kind, now],
    )


def pending_lot_part(
    wallet: WalletRow,
    amount: int,
    now: datetime,
    available_at: datetime,
    expires_at: datetime | None,
    purchase_id: uuid.UUID | None,
    description: str,
    details: str,
    qualifying: int,
    extend: bool = False,
    when: str = "true",
) -> db.Part:
    """The CTEs (`name AS (...), ...`) that write a pending lot, the wallet's pending
    total and the event (and with `extend`, the wallet's open lots moved to the new lot's
    expiry), when the SQL condition `when` holds (in the statement that carries them:
    a purchase's, gated on its row being new)."""
    return db.Part(
        f"""
        pending_lot AS (
            INSERT INTO lots (wallet_id, amount, remaining, state, earned_at, available_at, expires_at,
                              purchase_id, description, explanation, qualifying)
            SELECT $1, $2, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9 WHERE {when}
        ), pending_moved AS (
            UPDATE wallets SET pending = pending + $2, updated_at = $3 WHERE id = $1 AND {when}
        ), pending_extended AS ({_EXTEND.format(until="$5", flag=f"$13 AND {when}")}
        ), pending_event AS (
            INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
            SELECT $10, $1, NULL, 'WALLET_UPDATED', $3, $11, $12 WHERE {when}
        )""",
        (
            wallet.id,
            amount,
            now,
            available_at,
            expires_at,
            purchase_id,
            description,
            details,
            qualifying,
            wallet.member_id,
            wallet.balance,
            wallet.pending + amount,
            extend,
        ),
    )


def credit_part(
    wallet: WalletRow,
    amount: int,
    kind: str,
    qualifying: int,
    description: str,
    details: str,
    purchase_id: uuid.UUID | None,
    dedupe_key: str | None,
    now: datetime,
    expires_at: datetime | None,
    extend: bool = False,
    when: str = "true",
) -> db.Part:
    """The CTEs that write a credit when the SQL condition `when` holds: the entry (unless
    its dedupe key exists; CTE `entry` gives its id), its lot, the balance, the event (and
    with `extend`, the wallet's open lots moved to the new lot's expiry), its day's
    qualifying points."""
    return db.Part(
        f"""
        entry AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, purchase_id, dedupe_key, occurred_at)
            SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE {when}
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
        ), extended AS ({_EXTEND.format(until="$12", flag="$14 AND EXISTS (SELECT 1 FROM entry)")}
        ), rolled AS ({_ROLLED}
        )""",
        (
            wallet.id,
            wallet.member_id,
            kind,
            amount,
            wallet.balance + amount,
            qualifying,
            description,
            details,
            purchase_id,
            dedupe_key,
            now,
            expires_at,
            wallet.pending,
            extend,
        ),
    )


async def write(conn: BaseDBAsyncClient, part: db.Part) -> None:
    """A part of CTEs above (`pending_lot_part`, `extend_part`) alone: one statement."""
    await conn.execute_query(f"WITH {part.sql} SELECT 1", list(part.params))


async def insert_credit(conn: BaseDBAsyncClient, part: db.Part) -> int | None:
    """`credit_part` alone: one statement. The entry's id, or None when the dedupe key
    was credited before."""
    rows = await conn.execute_query_dict(f"WITH {part.sql} SELECT id FROM entry", list(part.params))
    return rows[0]["id"] if rows else None


# An inactivity policy's step (and a marketer's extension): the wallet's open lots (spendable
# or pending, points left) that would expire before `until` expire then instead; never earlier.
_EXTEND = """
    UPDATE lots SET expires_at = {until}::timestamptz
    WHERE {flag} AND wallet_id = $1 AND state IN ('AVAILABLE', 'PENDING') AND remaining > 0
      AND expires_at < {until}::timestamptz
"""


def extend_part(wallet_id: uuid.UUID, until: datetime, when: str = "true") -> db.Part:
    """`_EXTEND` alone, as CTEs: an activity that earned nothing (a daily cap reached) still counts."""
    return db.Part(f"extended_only AS ({_EXTEND.format(until='$2', flag=when)})", (wallet_id, until))


async def insert_debit(
    conn: BaseDBAsyncClient,
    wallet: WalletRow,
    amount: int,
    kind: str,
    qualifying: int,
    description: str,
    details: str,
    purchase_id: uuid.UUID | None,
    dedupe_key: str | None,
    now: datetime,
) -> int | None:
    """One statement: the entry, the balance, the event, and the lots consumed in expiry
    order (each lot gives what is left of `amount` after the lots before it). No row locks
    on lots are needed: the caller holds the wallet lock. None: the dedupe key was used."""
    rows = await conn.execute_query_dict(
        f"""
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
        ), rolled AS ({_ROLLED}
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
            description,
            details,
            purchase_id,
            dedupe_key,
            now,
            wallet.pending,
        ],
    )
    return rows[0]["id"] if rows else None


async def insert_event(conn: BaseDBAsyncClient, wallet: WalletRow, entry_id: int | None, now: datetime) -> None:
    """The outbox row that live updates deliver once the transaction commits."""
    await conn.execute_query(
        "INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)"
        " VALUES ($1, $2, $3, 'WALLET_UPDATED', $4, $5, $6)",
        [wallet.member_id, wallet.id, entry_id, now, wallet.balance, wallet.pending],
    )


async def insert_tier_event(conn: BaseDBAsyncClient, member_id: uuid.UUID, now: datetime) -> None:
    await conn.execute_query(
        "INSERT INTO wallet_events (member_id, kind, created_at) VALUES ($1, 'TIER_CHANGED', $2)", [member_id, now]
    )


async def cancel_pending_lots(
    conn: BaseDBAsyncClient, wallet_id: uuid.UUID, purchase_id: uuid.UUID, amount: int
) -> int:
    """Take up to `amount` back from this purchase's pending lots, oldest first; how much."""
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
        [wallet_id, purchase_id, amount],
    )
    return sum(r["taken"] for r in rows)


async def less_pending(conn: BaseDBAsyncClient, wallet_id: uuid.UUID, amount: int, now: datetime) -> None:
    await conn.execute_query(
        "UPDATE wallets SET pending = pending - $2, updated_at = $3 WHERE id = $1", [wallet_id, amount, now]
    )


async def relaxed_commit(conn: BaseDBAsyncClient, *, bound: float | None = None) -> None:
    """This transaction's commit does not wait for its WAL flush: for the daily pass's
    batches, which are atomic and idempotent (a crash can lose the last few, never half
    of one, and the next run redoes them), so hundreds of short transactions do not each
    wait for the disk. With `bound` (seconds), in the same statement: each further
    statement is cancelled by the server past it (asyncpg's QueryCanceledError,
    `db.Cancelled`)."""
    if bound is None:
        await conn.execute_query("SET LOCAL synchronous_commit TO off")
        return
    await conn.execute_query(
        "SELECT set_config('synchronous_commit', 'off', true), set_config('statement_timeout', $1, true)",
        [str(max(1, int(bound * 1000)))],
    )


async def lock_wallets_with_due_lots(
    conn: BaseDBAsyncClient,
    now: datetime,
    *,
    pending: bool,
    member_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[uuid.UUID]:
    """Lock, in primary-key order, the wallets with lots due at `now`: pending lots whose
    window passed (`pending`), else available lots past their expiry. With `limit`, only
    the first `limit` such wallets whose id comes after `after` (a batch of the daily pass)."""
    if pending:
        condition = "state = 'PENDING' AND remaining > 0 AND available_at <= $1"
    else:
        condition = "state = 'AVAILABLE' AND remaining > 0 AND expires_at <= $1"
    params: list = [now]
    if member_id is not None:
        params.append(member_id)
        condition += f" AND wallet_id IN (SELECT id FROM wallets WHERE member_id = ${len(params)})"
    if after is not None:
        params.append(after)
        condition += f" AND wallet_id > ${len(params)}"
    wanted = f"id IN (SELECT wallet_id FROM lots WHERE {condition})"
    if limit is not None:
        # The lots' wallet-led indexes walk wallets in id order from `after`; as an array the
        # batch's wallets are looked up by key, where a join would read every wallet per batch.
        wanted = (
            f"id = ANY(ARRAY(SELECT DISTINCT wallet_id FROM lots WHERE {condition}"
            f" ORDER BY wallet_id LIMIT {int(limit)}))"
        )
    rows = await conn.execute_query_dict(f"SELECT id FROM wallets WHERE {wanted} ORDER BY id FOR UPDATE", params)
    return [r["id"] for r in rows]


async def release_lots(conn: BaseDBAsyncClient, now: datetime, wallet_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Pending lots whose window passed become spendable: one EARN entry per lot, in one
    set-based statement. The members whose balance moved."""
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
            RETURNING id, wallet_id, member_id, balance_after, qualifying
        ), rolled AS (
            INSERT INTO qualifying_days (member_id, day, qualifying)
            SELECT member_id, ($1 AT TIME ZONE 'UTC')::date, SUM(qualifying) FROM entries
            WHERE qualifying <> 0 GROUP BY member_id
            ON CONFLICT (member_id, day) DO UPDATE SET qualifying = qualifying_days.qualifying + EXCLUDED.qualifying
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


async def expire_lots(conn: BaseDBAsyncClient, now: datetime, wallet_ids: list[uuid.UUID]) -> int:
    """What is left of past-due lots expires: one EXPIRE entry per wallet, in one
    set-based statement. The points expired. The caller holds the wallets' locks, so
    no one else changes their lots: the totals are read from the same snapshot the
    update starts from, and the update needs no join (as lean as a bare UPDATE)."""
    rows = await conn.execute_query_dict(
        """
        WITH totals AS (
            SELECT wallet_id, SUM(remaining) AS amount FROM lots
            WHERE wallet_id = ANY($2::uuid[]) AND state = 'AVAILABLE' AND remaining > 0 AND expires_at <= $1
            GROUP BY wallet_id
        ), gone AS (
            UPDATE lots SET remaining = 0
            WHERE wallet_id = ANY($2::uuid[]) AND state = 'AVAILABLE' AND remaining > 0 AND expires_at <= $1
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


async def extend_lots(
    conn: BaseDBAsyncClient, wallet_ids: list[uuid.UUID], until: datetime, now: datetime, description: str, details: str
) -> list[uuid.UUID]:
    """A marketer's extension, in one statement: the wallets' open lots that expire before
    `until` expire then; each wallet where a lot moved gets an EXTEND entry of 0 points
    (its balance unchanged) and an outbox event. The caller holds the wallets' locks.
    The members whose points moved."""
    rows = await conn.execute_query_dict(
        """
        WITH moved AS (
            UPDATE lots SET expires_at = $2
            WHERE wallet_id = ANY($1::uuid[]) AND state IN ('AVAILABLE', 'PENDING') AND remaining > 0
              AND expires_at < $2
            RETURNING wallet_id
        ), entries AS (
            INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying,
                                        description, explanation, occurred_at)
            SELECT w.id, w.member_id, 'EXTEND', 0, w.balance, 0, $4, $5::jsonb, $3
            FROM wallets w WHERE w.id IN (SELECT wallet_id FROM moved) ORDER BY w.id
            RETURNING id, wallet_id, member_id, balance_after
        )
        INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
        SELECT e.member_id, e.wallet_id, e.id, 'WALLET_UPDATED', $3, e.balance_after, w.pending
        FROM entries e JOIN wallets w ON w.id = e.wallet_id
        RETURNING member_id
        """,
        [wallet_ids, until, now, description, details],
    )
    return sorted({r["member_id"] for r in rows})


async def adjustment(conn: BaseDBAsyncClient, dedupe_key: str) -> tuple[uuid.UUID, int] | None:
    """(member, amount) of the entry with this dedupe key, if any."""
    rows = await conn.execute_query_dict(
        "SELECT member_id, amount FROM ledger_entries WHERE dedupe_key = $1", [dedupe_key]
    )
    return (rows[0]["member_id"], rows[0]["amount"]) if rows else None


async def activity_counts(
    conn: BaseDBAsyncClient, member_id: uuid.UUID, rule: str, dedupe_key: str, since: datetime
) -> ActivityCounts:
    rows = await conn.execute_query_dict(
        """
        SELECT COUNT(*) FILTER (WHERE dedupe_key = $3) AS same,
               COUNT(*) FILTER (WHERE occurred_at >= $4) AS today, COUNT(*) AS ever
        FROM ledger_entries WHERE member_id = $1 AND kind = 'BONUS' AND explanation->>'rule' = $2
        """,
        [member_id, rule, dedupe_key, since],
    )
    return ActivityCounts(**rows[0])


# --- reads -------------------------------------------------------------------------------


async def wallets_of(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[WalletRow]]:
    """The wallets of many members in one query, POINTS before CASHBACK."""
    rows = await db.client().execute_query_dict(
        "SELECT id, member_id, kind, balance, pending FROM wallets"
        " WHERE member_id = ANY($1::uuid[]) ORDER BY kind DESC",
        [member_ids],
    )
    out: dict[uuid.UUID, list[WalletRow]] = {m: [] for m in member_ids}
    for r in rows:
        out[r["member_id"]].append(WalletRow(**r))
    return out


async def wallet(wallet_id: uuid.UUID) -> WalletRow | None:
    rows = await db.client().execute_query_dict(
        "SELECT id, member_id, kind, balance, pending FROM wallets WHERE id = $1", [wallet_id]
    )
    return WalletRow(**rows[0]) if rows else None


# A wallet's first `$2` expiry moments, found one by one down the spendable lots' index
# (lots_spendable), from the wallets `{seed}` names as w(id); then each moment's lots
# summed (`_MOMENT_AMOUNT`), so a long history of lots costs nothing.
_MOMENTS = """
    moments AS (
        SELECT w.id AS wallet_id, 1 AS n,
               (SELECT MIN(expires_at) FROM lots WHERE wallet_id = w.id AND state = 'AVAILABLE'
                  AND remaining > 0 AND expires_at IS NOT NULL) AS expires_at
        FROM {seed}
        UNION ALL
        SELECT m.wallet_id, m.n + 1,
               (SELECT MIN(expires_at) FROM lots WHERE wallet_id = m.wallet_id AND state = 'AVAILABLE'
                  AND remaining > 0 AND expires_at > m.expires_at)
        FROM moments m WHERE m.expires_at IS NOT NULL AND m.n < $2
    )"""
_MOMENT_AMOUNT = """(SELECT SUM(remaining) FROM lots WHERE wallet_id = m.wallet_id AND state = 'AVAILABLE'
                  AND remaining > 0 AND expires_at = m.expires_at) AS amount"""


async def expiring_soon(wallet_ids: list[uuid.UUID], per_wallet: int) -> dict[uuid.UUID, list[Expiring]]:
    """Each wallet's first `per_wallet` expiry moments and what expires at each."""
    rows = await db.client().execute_query_dict(
        f"""
        WITH RECURSIVE {_MOMENTS.format(seed="unnest($1::uuid[]) AS w(id)")}
        SELECT m.wallet_id, m.expires_at, {_MOMENT_AMOUNT}
        FROM moments m WHERE m.expires_at IS NOT NULL ORDER BY m.wallet_id, m.expires_at
        """,
        [wallet_ids, per_wallet],
    )
    out: dict[uuid.UUID, list[Expiring]] = {w: [] for w in wallet_ids}
    for r in rows:
        out[r["wallet_id"]].append(Expiring(int(r["amount"]), r["expires_at"]))
    return out


async def wallets_expiring(
    member_ids: list[uuid.UUID], per_wallet: int
) -> tuple[dict[uuid.UUID, list[WalletRow]], dict[uuid.UUID, list[Expiring]]]:
    """wallets_of and expiring_soon of their POINTS wallets in one statement (cashback
    never expires): a row per wallet and expiry moment."""
    rows = await db.client().execute_query_dict(
        f"""
        WITH RECURSIVE {_MOMENTS.format(seed="wallets w WHERE w.member_id = ANY($1::uuid[]) AND w.kind = 'POINTS'")}
        SELECT w.id, w.member_id, w.kind, w.balance, w.pending, m.expires_at, {_MOMENT_AMOUNT}
        FROM wallets w LEFT JOIN moments m ON m.wallet_id = w.id AND m.expires_at IS NOT NULL
        WHERE w.member_id = ANY($1::uuid[]) ORDER BY w.kind DESC, w.id, m.expires_at
        """,
        [member_ids, per_wallet],
    )
    wallets: dict[uuid.UUID, list[WalletRow]] = {m: [] for m in member_ids}
    expiring: dict[uuid.UUID, list[Expiring]] = {}
    seen = None
    for r in rows:
        if r["id"] != seen:  # a wallet's rows are adjacent (ordered by its id)
            seen = r["id"]
            wallets[r["member_id"]].append(WalletRow(seen, r["member_id"], r["kind"], r["balance"], r["pending"]))
            if r["kind"] == "POINTS":
                expiring[seen] = []
        if r["expires_at"] is not None:
            expiring[seen].append(Expiring(int(r["amount"]), r["expires_at"]))
    return wallets, expiring


async def entries(wallet_id: uuid.UUID, limit: int, before_id: int | None) -> list[EntryRow]:
    """A wallet's history, newest first, keyset-paged on the entry id."""
    sql = (
        "SELECT id, kind, amount, balance_after, description, explanation, occurred_at"
        " FROM ledger_entries WHERE wallet_id = $1"
    )
    params: list = [wallet_id]
    if before_id is not None:
        sql += " AND id < $2"
        params.append(before_id)
    sql += f" ORDER BY id DESC LIMIT {int(limit)}"
    return [EntryRow.of(r) for r in await db.client().execute_query_dict(sql, params)]


async def entry(entry_id: int) -> OwnedEntry | None:
    rows = await db.client().execute_query_dict(
        "SELECT e.id, e.member_id, w.kind AS wallet_kind, e.kind, e.amount, e.balance_after,"
        " e.description, e.explanation, e.occurred_at"
        " FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id WHERE e.id = $1",
        [entry_id],
    )
    return OwnedEntry(EntryRow.of(rows[0]), rows[0]["member_id"], rows[0]["wallet_kind"]) if rows else None


async def expiring_points(since: datetime, until: datetime) -> list[ExpiringLots]:
    """POINTS that expire after `since` up to `until`, per member and expiry moment."""
    rows = await db.client().execute_query_dict(
        """
        SELECT w.member_id, l.expires_at, SUM(l.remaining) AS amount
        FROM lots l JOIN wallets w ON w.id = l.wallet_id
        WHERE w.kind = 'POINTS' AND l.state = 'AVAILABLE' AND l.remaining > 0
          AND l.expires_at > $1 AND l.expires_at <= $2
        GROUP BY w.member_id, l.expires_at
        """,
        [since, until],
    )
    return [ExpiringLots(r["member_id"], r["expires_at"], int(r["amount"])) for r in rows]


async def all_spent(warned: list[tuple[uuid.UUID, uuid.UUID, datetime]]) -> list[uuid.UUID]:
    """Of (key, member, expiry moment) triples, the keys whose member has no POINTS left that
    expire at that moment: one statement for the batch."""
    rows = await db.client().execute_query_dict(
        """
        SELECT q.id FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS q(id, member_id, expires_at)
        WHERE (SELECT COALESCE(SUM(l.remaining), 0) FROM lots l JOIN wallets w ON w.id = l.wallet_id
               WHERE w.member_id = q.member_id AND w.kind = 'POINTS' AND l.state = 'AVAILABLE'
                 AND l.expires_at = q.expires_at) <= 0
        """,
        [[k for k, _, _ in warned], [m for _, m, _ in warned], [e for _, _, e in warned]],
    )
    return [r["id"] for r in rows]


# --- the outbox ----------------------------------------------------------------------------

_EVENT = """
    SELECT ev.id, ev.kind, ev.member_id, ev.created_at, ev.wallet_id, w.kind AS wallet_kind,
           ev.balance, ev.pending, e.id AS entry_id, e.kind AS entry_kind, e.amount, e.balance_after,
           e.description, e.explanation, e.occurred_at
"""


def _event(r: dict) -> EventRow:
    wallet = None
    if r["wallet_id"] is not None:
        wallet = WalletRow(r["wallet_id"], r["member_id"], r["wallet_kind"], r["balance"], r["pending"])
    entry = EntryRow.of(r, "entry_id", "entry_kind") if r["entry_id"] is not None else None
    return EventRow(r["id"], r["kind"], r["member_id"], r["created_at"], wallet, entry)


async def latest_event(member_id: uuid.UUID) -> int:
    rows = await db.client().execute_query_dict(
        "SELECT COALESCE(MAX(id), 0) AS id FROM wallet_events WHERE member_id = $1", [member_id]
    )
    return int(rows[0]["id"])


async def latest_events(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """`latest_event` for many members in one query (0 for a member with no event yet)."""
    rows = await db.client().execute_query_dict(
        """
        SELECT m.member_id,
               COALESCE((SELECT MAX(ev.id) FROM wallet_events ev WHERE ev.member_id = m.member_id), 0) AS id
        FROM unnest($1::uuid[]) AS m(member_id)
        """,
        [member_ids],
    )
    return {r["member_id"]: int(r["id"]) for r in rows}


async def events_after(member_id: uuid.UUID, cursor: int, kinds: list[str], limit: int) -> list[EventRow]:
    rows = await db.client().execute_query_dict(
        _EVENT
        + """
        FROM wallet_events ev
        LEFT JOIN wallets w ON w.id = ev.wallet_id
        LEFT JOIN ledger_entries e ON e.id = ev.entry_id
        WHERE ev.member_id = $1 AND ev.id > $2 AND ev.kind = ANY($3::text[])
        ORDER BY ev.id LIMIT $4
        """,
        [member_id, cursor, kinds, limit],
    )
    return [_event(r) for r in rows]


async def events_after_many(members: list[uuid.UUID], cursors: list[int], limit: int) -> list[EventRow]:
    rows = await db.client().execute_query_dict(
        _EVENT
        + """
        FROM unnest($1::uuid[], $2::bigint[]) AS s(member_id, cursor)
        -- LATERAL: an index range per member. A plain join let the planner hash the
        -- whole outbox for a burst of a few members (a scan that grows with history).
        CROSS JOIN LATERAL (
            SELECT * FROM wallet_events x WHERE x.member_id = s.member_id AND x.id > s.cursor ORDER BY x.id LIMIT $3
        ) ev
        LEFT JOIN wallets w ON w.id = ev.wallet_id
        LEFT JOIN ledger_entries e ON e.id = ev.entry_id
        ORDER BY ev.id LIMIT $3
        """,
        [members, cursors, limit],
    )
    return [_event(r) for r in rows]


# --- reads for KPIs ---


@dataclass(frozen=True)
class PointsFlow:
    """Points that moved through the points wallets in a period (each a positive number)."""

    issued: int  # EARN, BONUS and ADJUST entries (net), less what purchase refunds took back
    redeemed: int  # REDEEM entries: spent on rewards and draws, less draw entries refunded
    expired: int  # EXPIRE entries


async def points_flow(start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None) -> PointsFlow:
    params: list = [start, end]
    among = db.among("e.member_id", members, params)
    rows = await db.analytic_read(
        f"""
        SELECT COALESCE(SUM(e.amount) FILTER (WHERE e.kind IN ('EARN', 'BONUS', 'ADJUST', 'REFUND')), 0) AS issued,
               COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'REDEEM'), 0) AS redeemed,
               COALESCE(-SUM(e.amount) FILTER (WHERE e.kind = 'EXPIRE'), 0) AS expired
        FROM ledger_entries e
        WHERE e.occurred_at >= $1 AND e.occurred_at < $2{among}
          -- an anti-join on the (few, often no) cashback wallets costs far less than a join on the points ones
          AND NOT EXISTS (SELECT 1 FROM wallets w WHERE w.id = e.wallet_id AND w.kind = 'CASHBACK')
        """,
        params,
    )
    r = rows[0]
    return PointsFlow(issued=int(r["issued"]), redeemed=int(r["redeemed"]), expired=int(r["expired"]))


async def points_held(members: Sequence[uuid.UUID] | None = None) -> int:
    """Points members hold now: spendable and pending (the program owes both)."""
    params: list = []
    among = db.among("member_id", members, params)
    rows = await db.client().execute_query_dict(
        f"SELECT COALESCE(SUM(balance + pending), 0) AS held FROM wallets WHERE kind = 'POINTS'{among}", params
    )
    return int(rows[0]["held"])
