"""Journeys: messages and rewards the program sends by itself (the program file's
`[[journeys]]`): a welcome, a win-back when a member enters `at_risk`, a congratulation
on a tier reached, a milestone purchase, the anniversary of joining.

`run` (the worker's `journeys` job, every minute) works from committed rows only: it
records each new occurrence as a run (once per journey, member and occurrence: a unique
key), then fires the runs whose delay is over, in one transaction per batch: the
condition checked then, the bonus through the ledger, the offer through the offers area,
the push queued for the dispatcher (consent, quiet hours and caps apply there). The
bonus and the push carry the run's key, so nothing is given twice whoever runs it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import DomainError
from domain.journeys import repository
from domain.journeys.repository import Candidate, RunRow
from domain.members import service as members
from domain.notifications import service as notifications
from domain.offers import service as offers
from domain.program.config import Journey, JourneyTrigger, Program
from domain.purchases import service as purchases
from domain.segments import service as segments
from domain.wallets import service as wallets

__all__ = ["Ran", "RunRow", "run", "runs_of"]

KIND = "JOURNEY"
# How far back a pass looks for triggers: a worker down for less than this misses none.
LOOKBACK = timedelta(days=7)
BATCH = 200

log = logging.getLogger("loyalty.journeys")


@dataclass(frozen=True)
class Ran:
    found: int  # new occurrences recorded
    fired: int
    skipped: int


async def _occurrences(program: Program, journey: Journey, start: datetime, end: datetime) -> list[Candidate]:
    match journey.trigger:
        case JourneyTrigger.ENROLLED:
            return [Candidate(e.member_id, e.what, e.at) for e in await members.joined_in(start, end)]
        case JourneyTrigger.ANNIVERSARY:
            return [Candidate(e.member_id, e.what, e.at) for e in await members.anniversaries_in(start, end)]
        case JourneyTrigger.TIER_UPGRADED:
            # Each tier above the entry one, once: moving down and up again congratulates no one twice.
            return [
                Candidate(e.member_id, e.what, e.at)
                for e in await members.tier_moves_in(start, end)
                if e.what != program.entry_tier.key and program.tier(e.what) is not None
            ]
        case JourneyTrigger.PURCHASE_COUNT:
            assert journey.purchases is not None
            found = await purchases.nth_purchases_in(journey.purchases, start, end)
            return [Candidate(m, str(journey.purchases), at) for m, at in found]
        case JourneyTrigger.SEGMENT_ENTERED:
            assert journey.segment is not None
            first: dict[uuid.UUID, datetime] = {}
            for m, at in await segments.entries_in(journey.segment, start, end):
                first[m] = min(at, first.get(m, at))  # in and out and in again within a pass: the first
            return [Candidate(m, at.isoformat(), at) for m, at in first.items()]
    raise AssertionError(journey.trigger)


async def _skip_reason(program: Program, journey: Journey, run: RunRow) -> tuple[str | None, str]:
    """Why the run does not fire now (None: it does), and the member's tier name."""
    member = await members.find(run.member_id)
    if member is None:
        return "MEMBER_GONE", ""
    tier = program.tier(member.tier_key) or program.entry_tier
    if journey.only_tiers and tier.key not in journey.only_tiers:
        return f"CONDITION: tier {tier.key} is not one of {', '.join(journey.only_tiers)}", tier.name
    if journey.trigger == JourneyTrigger.SEGMENT_ENTERED and journey.still_in_segment:
        if journey.segment not in await segments.keys_of(run.member_id):
            return f"CONDITION: no longer in {journey.segment}", tier.name
    return None, tier.name


def dedupe_key(run: RunRow) -> str:
    return f"journey:{run.journey_key}:{run.member_id}:{run.occurrence}"


async def _fire(conn: BaseDBAsyncClient, program: Program, run: RunRow, now: datetime) -> tuple[str, str | None]:
    journey = program.journey(run.journey_key)
    if journey is None:
        return "SKIPPED", "REMOVED: the journey is no longer in the program"
    reason, tier_name = await _skip_reason(program, journey, run)
    if reason is not None:
        return "SKIPPED", reason
    key = dedupe_key(run)
    if journey.points:
        await wallets.grant_bonus(
            conn, program, run.member_id, journey.points, rule=f"journey:{journey.key}",
            description=f"{journey.title or journey.key.replace('_', ' ').capitalize()}: {journey.points} points",
            dedupe_key=key, now=now,
        )  # fmt: skip
    data = {"journey": journey.key}
    if journey.offer_id is not None:
        try:  # clipped for the member (again: the same answer)
            await offers.activate(program, run.member_id, uuid.UUID(journey.offer_id))
        except DomainError as exc:
            log.warning("journey %s: offer %s not given to %s: %s", journey.key, journey.offer_id, run.member_id, exc)
        else:
            data["offerId"] = journey.offer_id
    if journey.title is not None and journey.body is not None:
        if journey.deep_link:
            data["deepLink"] = journey.deep_link
        await notifications.enqueue(
            run.member_id, kind=KIND, title=journey.title.replace("{tier}", tier_name),
            body=journey.body.replace("{tier}", tier_name), dedupe_key=key, due_at=now, data=data, conn=conn,
        )  # fmt: skip
    return "DONE", None


async def run(program: Program, now: datetime | None = None) -> Ran:
    """Record new occurrences, then fire what is due. Any number of workers may run this
    at once: occurrences are unique, and each due run is locked by the worker firing it."""
    now = now or clock.now()
    found = 0
    for journey in program.journeys:
        candidates = await _occurrences(program, journey, now - LOOKBACK, now)
        repeats = journey.trigger == JourneyTrigger.SEGMENT_ENTERED
        repeat = timedelta(days=journey.repeat_after_days) if repeats else None
        found += await repository.insert_runs(journey.key, candidates, timedelta(hours=journey.delay_hours), repeat)
    fired = skipped = 0
    while True:
        async with in_transaction() as conn:
            due = await repository.claim_due(conn, now, BATCH)
            if not due:
                return Ran(found, fired, skipped)
            results = [await _fire(conn, program, r, now) for r in due]
            await repository.finish(conn, [r.id for r in due], [s for s, _ in results], [w for _, w in results], now)
        done = sum(1 for s, _ in results if s == "DONE")
        fired, skipped = fired + done, skipped + len(results) - done


async def runs_of(member_id: uuid.UUID) -> list[RunRow]:
    """The member's journey runs, oldest first."""
    return await repository.runs_of(member_id)
