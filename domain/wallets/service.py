"""Wallet use cases besides purchases: adjustments, bonuses, expiry runs, and reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import InvalidInput, NotEligible
from domain.keys import IdempotencyConflict, valid_key
from domain.program.config import Program
from domain.wallets import ledger, repository
from domain.wallets.expiry import expires_at

MAX_ADJUSTMENT = 1_000_000


async def adjust(
    program: Program, *, member_id: uuid.UUID, points: int, reason: str, idempotency_key: str, by: str
) -> ledger.WalletRow:
    """A goodwill credit or a correction: an ADJUST entry naming its reason, once per key.
    A negative adjustment never takes the balance below zero (INSUFFICIENT_POINTS)."""
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise InvalidInput(f"points must be non-zero and at most {MAX_ADJUSTMENT:,} either way.", field="points")
    reason = " ".join(reason.split())
    if not reason or len(reason) > 160:
        raise InvalidInput("Give a reason of 1 to 160 characters.", field="reason")
    key = valid_key(idempotency_key, "idempotencyKey")
    dedupe = f"adjust:{key}"
    now = clock.now()
    async with in_transaction() as conn:
        wallet = (await ledger.lock(conn, member_id, (ledger.POINTS,), now))[ledger.POINTS]
        done = await conn.execute_query_dict(
            "SELECT member_id, amount FROM ledger_entries WHERE dedupe_key = $1", [dedupe]
        )
        if done:
            if (done[0]["member_id"], done[0]["amount"]) != (member_id, points):
                raise IdempotencyConflict(
                    "This idempotencyKey was used for another adjustment.", field="idempotencyKey"
                )
            return wallet
        explanation = {"rule": "adjustment", "reason": reason, "by": by[:100]}
        description = f"Adjustment: {reason}"
        if points > 0:
            await ledger.credit(
                conn,
                wallet,
                points,
                kind="ADJUST",
                description=description,
                now=now,
                expires_at=expires_at(program, now),
                explanation=explanation,
                dedupe_key=dedupe,
            )
        else:
            await ledger.debit(
                conn,
                wallet,
                -points,
                kind="ADJUST",
                description=description,
                now=now,
                explanation=explanation,
                dedupe_key=dedupe,
            )
        return wallet


async def grant_bonus(
    conn: BaseDBAsyncClient,
    program: Program,
    member_id: uuid.UUID,
    points: int,
    *,
    rule: str,
    description: str,
    dedupe_key: str,
    now: datetime,
) -> ledger.Entry | None:
    """A BONUS credit, at most once per `dedupe_key` (welcome, birthday 2027, …)."""
    if points <= 0:
        return None
    wallet = (await ledger.lock(conn, member_id, (ledger.POINTS,), now))[ledger.POINTS]
    return await ledger.credit(
        conn,
        wallet,
        points,
        kind="BONUS",
        description=description,
        now=now,
        expires_at=expires_at(program, now),
        explanation={"rule": rule},
        dedupe_key=dedupe_key,
    )


async def grant_birthday_bonus(program: Program, member_id: uuid.UUID, year: int) -> ledger.Entry | None:
    """The birthday bonus for `year`: granted once, however often it is asked for."""
    now = clock.now()
    async with in_transaction() as conn:
        return await grant_bonus(
            conn,
            program,
            member_id,
            program.bonuses.birthday,
            rule="birthday",
            description=f"Happy birthday! {program.bonuses.birthday} points",
            dedupe_key=f"birthday:{member_id}:{year}",
            now=now,
        )


# --- reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class Expiring:
    amount: int
    expires_at: datetime


async def wallets_of(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict]]:
    """The wallets of many members in one query (for dataloaders)."""
    rows = await connections.get("default").execute_query_dict(
        # POINTS before CASHBACK
        "SELECT id, member_id, kind, balance, pending FROM wallets"
        " WHERE member_id = ANY($1::uuid[]) ORDER BY kind DESC",
        [member_ids],
    )
    out: dict[uuid.UUID, list[dict]] = {m: [] for m in member_ids}
    for r in rows:
        out[r["member_id"]].append(r)
    return out


async def expiring_soon(wallet_ids: list[uuid.UUID], per_wallet: int = 3) -> dict[uuid.UUID, list[Expiring]]:
    """The next expiry dates of each wallet with the amounts that expire then."""
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT wallet_id, expires_at, amount FROM (
            SELECT wallet_id, expires_at, SUM(remaining) AS amount,
                   ROW_NUMBER() OVER (PARTITION BY wallet_id ORDER BY expires_at) AS n
            FROM lots
            WHERE wallet_id = ANY($1::uuid[]) AND state = 'AVAILABLE' AND remaining > 0
              AND expires_at IS NOT NULL
            GROUP BY wallet_id, expires_at
        ) t WHERE n <= $2 ORDER BY wallet_id, expires_at
        """,
        [wallet_ids, per_wallet],
    )
    out: dict[uuid.UUID, list[Expiring]] = {w: [] for w in wallet_ids}
    for r in rows:
        out[r["wallet_id"]].append(Expiring(int(r["amount"]), r["expires_at"]))
    return out


async def entries(wallet_id: uuid.UUID, limit: int, before_id: int | None) -> list[dict]:
    """A wallet's history, newest first, keyset-paged on the entry id."""
    sql = (
        "SELECT id, wallet_id, kind, amount, balance_after, description, explanation, occurred_at"
        " FROM ledger_entries WHERE wallet_id = $1"
    )
    params: list = [wallet_id]
    if before_id is not None:
        sql += " AND id < $2"
        params.append(before_id)
    sql += f" ORDER BY id DESC LIMIT {int(limit)}"
    return await connections.get("default").execute_query_dict(sql, params)


async def wallet(wallet_id: uuid.UUID) -> dict | None:
    rows = await connections.get("default").execute_query_dict(
        "SELECT id, member_id, kind, balance, pending FROM wallets WHERE id = $1", [wallet_id]
    )
    return rows[0] if rows else None


async def record_activity(
    program: Program, *, member_id: uuid.UUID, activity: str, reference: str, by: str
) -> ledger.WalletRow:
    """Points for a survey answered, a share, a check-in, a completed profile: once per
    reference, within the program's caps per day and per lifetime (NOT_ELIGIBLE past them)."""
    rule = program.activities.get(activity)
    if rule is None:
        raise InvalidInput(f"This program gives no points for {activity}.", field="activity")
    reference = valid_key(reference, "reference")
    dedupe = f"activity:{member_id}:{activity}:{reference}"
    now = clock.now()
    midnight = now.astimezone(program.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    async with in_transaction() as conn:
        wallet = (await ledger.lock(conn, member_id, (ledger.POINTS,), now))[ledger.POINTS]
        done = await conn.execute_query_dict(
            """
            SELECT COUNT(*) FILTER (WHERE dedupe_key = $3) AS same,
                   COUNT(*) FILTER (WHERE occurred_at >= $4) AS today, COUNT(*) AS ever
            FROM ledger_entries WHERE member_id = $1 AND kind = 'BONUS' AND explanation->>'rule' = $2
            """,
            [member_id, f"activity:{activity}", dedupe, midnight],
        )
        counts = done[0]
        if counts["same"]:
            return wallet  # sent again: already credited
        if counts["today"] >= rule.per_day:
            raise NotEligible(
                f"{activity} earns points {rule.per_day} time(s) a day; come back tomorrow.", field="activity"
            )
        if rule.lifetime is not None and counts["ever"] >= rule.lifetime:
            raise NotEligible(
                f"{activity} has earned all the points it can ({rule.lifetime} time(s)).", field="activity"
            )
        await ledger.credit(
            conn,
            wallet,
            rule.points,
            kind="BONUS",
            now=now,
            expires_at=expires_at(program, now),
            description=f"{activity.replace('_', ' ').capitalize()}: {rule.points} points",
            explanation={"rule": f"activity:{activity}", "by": by[:100]},
            dedupe_key=dedupe,
        )
        return wallet


async def entry(entry_id: int) -> dict | None:
    """One ledger entry with its wallet's kind and its member."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT e.id, e.member_id, e.wallet_id, w.kind AS wallet_kind, e.kind, e.amount, e.balance_after,"
        " e.description, e.explanation, e.occurred_at"
        " FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id WHERE e.id = $1",
        [entry_id],
    )
    return rows[0] if rows else None


# --- reads for KPIs ---


async def points_flow(
    start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None
) -> repository.PointsFlow:
    return await repository.points_flow(start, end, members)


async def points_held(members: Sequence[uuid.UUID] | None = None) -> int:
    return await repository.points_held(members)
