"""Wallet use cases besides purchases: adjustments, bonuses, expiry runs, and reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock
from domain.audit import service as audit
from domain.errors import InvalidInput, NotEligible, NotFound
from domain.keys import IdempotencyConflict, valid_key
from domain.program.config import Program
from domain.wallets import ledger, repository
from domain.wallets.expiry import expires_at
from domain.wallets.repository import EntryRow, Expiring, ExpiringLots, OwnedEntry, WalletRow

MAX_ADJUSTMENT = 1_000_000


async def adjust(
    program: Program, *, member_id: uuid.UUID, points: int, reason: str, idempotency_key: str, by: str
) -> WalletRow:
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
        done = await repository.adjustment(conn, dedupe)
        if done:
            if done != (member_id, points):
                raise IdempotencyConflict(
                    "This idempotencyKey was used for another adjustment.", field="idempotencyKey"
                )
            return wallet.row()
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
        return wallet.row()


# A marketer's extension reaches at most this far: a typo in the year is refused.
MAX_EXTENSION = timedelta(days=3660)
# Members whose wallets one transaction of a segment's extension locks and moves.
EXTENSION_BATCH = 500


async def extend_expiry(
    program: Program,
    member_ids: list[uuid.UUID],
    until: datetime,
    *,
    actor: str,
    audience: dict,
    strict: bool,
    batch: int = EXTENSION_BATCH,
) -> list[uuid.UUID]:
    """A marketer moves the expiry of these members' points (spendable and pending) to
    `until`; points that already expire later keep their date. Recorded on the ledger as
    an EXTEND entry of 0 points per wallet that moved (the history says why the dates
    changed; no sum moves) and in the audit log. The members whose points moved.

    `strict` (named members, at most a thousand): one transaction, and every id must be a
    member (NOT_FOUND otherwise, nothing written). Otherwise (a segment, however large):
    in batches of `batch` members' wallets (in id order), each its own short transaction,
    as the expiry job does, so a purchase waits for one batch, not the whole segment.
    Running it again moves nothing twice: a lot already expiring at `until` is left alone
    and its wallet gets no second entry; a run cut short is completed by running it again.
    The audit entry is written with the last batch, which commits durably (the earlier ones
    need not wait for their WAL flush: the last commit's flush carries theirs)."""
    now = clock.now()
    if until.tzinfo is None:
        raise InvalidInput("until needs a time zone offset.", field="until")
    if until <= now or until > now + MAX_EXTENSION:
        raise InvalidInput("until must be in the future, at most 10 years ahead.", field="until")
    day = until.astimezone(program.zone).date()
    details = json.dumps({"rule": "extension", "until": until.isoformat(), "by": actor[:100]})
    description = f"Points now expire on {day:%d %B %Y}"
    members = sorted(set(member_ids))
    size = len(members) if strict else batch
    batches = [members[i : i + size] for i in range(0, len(members), size)] or [[]]
    extended: list[uuid.UUID] = []
    for i, some in enumerate(batches):
        last = i == len(batches) - 1
        async with in_transaction() as conn:
            if not last:
                await repository.relaxed_commit(conn)
            # The wallet lock, like every writer: a purchase on the same wallet waits, then sees the new dates.
            held = [w for w in await repository.lock_wallets(conn, some) if w.kind == ledger.POINTS]
            if strict and len({w.member_id for w in held}) < len(some):
                unknown = sorted(set(some) - {w.member_id for w in held})
                raise NotFound(f"No member with id {unknown[0]}.", field="memberIds")
            extended += await repository.extend_lots(conn, [w.id for w in held], until, now, description, details)
            if last:
                await audit.record(
                    conn,
                    actor=actor,
                    action="extendPointsExpiry",
                    subject_id=audience.get("segmentKey", "members"),
                    details={**audience, "until": until.isoformat(), "membersExtended": len(extended)},
                )
    return extended


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


async def wallets_of(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[WalletRow]]:
    """The wallets of many members in one query (for dataloaders), POINTS first."""
    return await repository.wallets_of(member_ids)


async def expiring_soon(wallet_ids: list[uuid.UUID], per_wallet: int = 3) -> dict[uuid.UUID, list[Expiring]]:
    """The next expiry dates of each wallet with the amounts that expire then."""
    return await repository.expiring_soon(wallet_ids, per_wallet)


async def wallets_expiring(
    member_ids: list[uuid.UUID], per_wallet: int = 3
) -> tuple[dict[uuid.UUID, list[WalletRow]], dict[uuid.UUID, list[Expiring]]]:
    """wallets_of, and expiring_soon of the POINTS wallets among them, in one query."""
    return await repository.wallets_expiring(member_ids, per_wallet)


async def entries(wallet_id: uuid.UUID, limit: int, before_id: int | None) -> list[EntryRow]:
    """A wallet's history, newest first, keyset-paged on the entry id."""
    return await repository.entries(wallet_id, limit, before_id)


async def wallet(wallet_id: uuid.UUID) -> WalletRow | None:
    return await repository.wallet(wallet_id)


async def expiring_points(since: datetime, until: datetime) -> list[ExpiringLots]:
    """POINTS that expire after `since` up to `until`, per member and expiry moment."""
    return await repository.expiring_points(since, until)


async def all_spent(warned: list[tuple[uuid.UUID, uuid.UUID, datetime]]) -> list[uuid.UUID]:
    """Of (key, member, expiry moment), the keys whose points expiring then are all gone."""
    return await repository.all_spent(warned)


async def record_tier_change(conn, member_id: uuid.UUID, now: datetime) -> None:
    """The outbox row that tells the member's subscriptions their tier moved."""
    await repository.insert_tier_event(conn, member_id, now)


async def record_activity(
    program: Program, *, member_id: uuid.UUID, activity: str, reference: str, by: str
) -> WalletRow:
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
        counts = await repository.activity_counts(conn, member_id, f"activity:{activity}", dedupe, midnight)
        if counts.same:
            return wallet.row()  # sent again: already credited
        if counts.today >= rule.per_day:
            raise NotEligible(
                f"{activity} earns points {rule.per_day} time(s) a day; come back tomorrow.", field="activity"
            )
        if rule.lifetime is not None and counts.ever >= rule.lifetime:
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
            extends_open_lots=program.expiry.extend_on_activity,
        )
        return wallet.row()


async def entry(entry_id: int) -> OwnedEntry | None:
    """One ledger entry with its wallet's kind and its member."""
    return await repository.entry(entry_id)


# --- reads for KPIs ---


async def points_flow(
    start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None
) -> repository.PointsFlow:
    return await repository.points_flow(start, end, members)


async def points_held(members: Sequence[uuid.UUID] | None = None) -> int:
    return await repository.points_held(members)
