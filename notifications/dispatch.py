"""Sending what is due, as a pipeline over each batch: claim → load → decide → send →
record. Only `decide` and `answered` choose (pure functions of what was loaded); the
other steps do the I/O, and none of them knows one kind from another.

A batch is claimed with a lease (`SENDING` until `claimed_until`) under
`FOR UPDATE SKIP LOCKED`, so two workers never take the same notification. A worker
that dies mid-batch leaves its claims to expire; they are sent again after the lease:
at most the batch in flight can be sent twice, and nothing is lost."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from domain import clock
from domain.members import service as members
from domain.notifications import service as notifications
from domain.notifications.service import SentCounts
from domain.program.config import Notifications, Program
from notifications import campaigns, policy
from notifications.metrics import NOTIFICATIONS
from notifications.nudges import RECHECKS
from notifications.push import Outcome, Push
from notifications.recheck import Queued

log = logging.getLogger("loyalty.push")

LEASE = timedelta(minutes=2)
# Kinds that keep their own record of outcomes, told in the same transaction as the
# notifications' own: a campaign's recipients.
RECORDED = {campaigns.KIND: campaigns.recorded}
MAX_ATTEMPTS = 8


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    suppressed: int = 0
    deferred: int = 0
    failed: int = 0
    retried: int = 0
    pruned: int = 0
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))


async def claim(program: Program, now: datetime, limit: int, lease: timedelta = LEASE) -> list[Queued]:
    """Take up to `limit` due notifications, highest priority first.

    Each kind's queue is read in due order from its index (notifications_queue), in the
    program's priority order after the kinds outside the caps, so a claim costs its
    batch, not the whole backlog."""
    priority = [*policy.UNCAPPED, *program.notifications.priority]
    claimed = await notifications.claim(now, limit, now + lease, priority)
    return [Queued.of(r) for r in claimed]


async def dispatch_due(
    program: Program, sender, *, batch: int = 500, now: datetime | None = None, lease: timedelta = LEASE
) -> DispatchResult:
    """One pass: everything due now, in batches, until none is left."""
    result = DispatchResult()
    while True:
        now_ = now or clock.now()
        claimed = await claim(program, now_, batch, lease)
        if not claimed:
            return result
        result.claimed += len(claimed)
        await _dispatch(program, sender, claimed, now_, result)
        if len(claimed) < batch:
            return result


async def _dispatch(program: Program, sender, claimed: list[Queued], now: datetime, result: DispatchResult) -> None:
    loaded = await load(claimed, now)
    decided = decide(program.notifications, loaded, now)
    sending = [(n, loaded.targets(n)) for n, d in decided if d.action == "SEND"]
    answers = await send(sender, sending)
    rows = [Written.of(n, d) for n, d in decided if d.action != "SEND"]
    rows += [answered(n, a, now) for (n, _), a in zip(sending, answers, strict=True)]
    await record(rows, result)
    dead = [
        t for (_, tokens), a in zip(sending, answers, strict=True) for t, o in zip(tokens, a, strict=True) if o.prune
    ]
    result.pruned += await notifications.prune_tokens(dead)


@dataclass(frozen=True)
class Loaded:
    """What the policy needs about a batch, read in a few statements."""

    claimed: list[Queued]
    members: dict[uuid.UUID, policy.Member]  # a deleted member is absent
    tokens: dict[uuid.UUID, list[str]]
    stale: dict[uuid.UUID, str]  # by notification: the nudge's re-check said no longer relevant, and why
    devices: dict[uuid.UUID, tuple[uuid.UUID, str]] = field(default_factory=dict)  # named devices: (member, token)

    def targets(self, n: Queued) -> list[str]:
        """The tokens a notification goes to: all of its member's, or the one device it
        names while that device is still the member's."""
        if n.device_id is None:
            return self.tokens[n.member_id]
        owner, token = self.devices.get(n.device_id, (None, ""))
        return [token] if owner == n.member_id else []


async def load(claimed: list[Queued], now: datetime) -> Loaded:
    member_ids = list({n.member_id for n in claimed})
    tokens: dict = defaultdict(list, await notifications.tokens_of(member_ids))
    # what counts toward the caps: the marketing pushes sent
    sent = await notifications.sent_since(member_ids, now - timedelta(days=7), policy.UNCAPPED)
    reachable = await members.reachable(member_ids)
    by_id = {r.id: _member(r, bool(tokens[r.id]), sent.get(r.id), now) for r in reachable}
    devices = await notifications.device_tokens(list({n.device_id for n in claimed if n.device_id is not None}))
    return Loaded(claimed, by_id, tokens, await _recheck(claimed), devices)


def _member(row: members.Reachable, has_devices: bool, sent: SentCounts | None, now: datetime) -> policy.Member:
    zone = ZoneInfo(row.timezone)
    today = now.astimezone(zone).date()
    return policy.Member(
        zone=zone,
        consents={"push_marketing": row.push_marketing, "location_nudges": row.location_nudges},
        has_devices=has_devices,
        sent_today=sum(1 for t in sent.times if t.astimezone(zone).date() == today) if sent else 0,
        sent_this_week=sent.week if sent else 0,
    )


async def _recheck(claimed: list[Queued]) -> dict[uuid.UUID, str]:
    """Each kind that registered a re-check is asked once, for its part of the batch."""
    stale: dict[uuid.UUID, str] = {}
    for kind, check in RECHECKS.items():
        of_kind = [n for n in claimed if n.kind == kind]
        if of_kind:
            stale |= await check(of_kind)
    return stale


def decide(rules: Notifications, loaded: Loaded, now: datetime) -> list[tuple[Queued, policy.Decision]]:
    """The policy for each notification of the batch, in claim order (priority first):
    each send counts at once, so the rest of the batch sees the caps (an explicit one,
    a marketer's test, does not count). A notification whose member is gone is left out:
    its claim lapses."""
    counted = dict(loaded.members)
    decided = []
    for n in loaded.claimed:
        member = counted.get(n.member_id)
        if member is None:
            continue
        facts = member if n.device_id is None else member.on_devices(bool(loaded.targets(n)))
        decision = policy.decide(rules, n.kind, facts, now, stale=loaded.stale.get(n.id))
        if decision.action == "SEND" and n.kind not in policy.UNCAPPED:
            counted[n.member_id] = member.counted()
        decided.append((n, decision))
    return decided


async def send(sender, sending: list[tuple[Queued, list[str]]]) -> list[list[Outcome]]:
    """One push per device; FCM's answers, grouped back by notification."""
    pushes = [
        Push(token, n.title, n.body, {"notificationId": str(n.id), "kind": n.kind, **n.data})
        for n, tokens in sending
        for token in tokens
    ]
    outcomes = iter(await sender.send(pushes) if pushes else [])
    return [[next(outcomes) for _ in tokens] for _, tokens in sending]


@dataclass(frozen=True)
class Written:
    """A notification's new state, and which counter it goes to (a DispatchResult
    field and the metric's outcome label)."""

    id: uuid.UUID
    kind: str
    outcome: str  # sent | suppressed | deferred | retried | failed
    state: str
    reason: str | None = None
    message_id: str | None = None
    sent_at: datetime | None = None
    due_at: datetime | None = None  # requeued for then

    @classmethod
    def of(cls, n: Queued, decision: policy.Decision) -> Written:
        """What the policy said when it did not say send."""
        if decision.action == "DEFER":
            return cls(n.id, n.kind, "deferred", "QUEUED", decision.reason, due_at=decision.until)
        return cls(n.id, n.kind, "suppressed", "SUPPRESSED", decision.reason)


def answered(n: Queued, answers: list[Outcome], now: datetime) -> Written:
    """Sent when one device took it; again later when FCM asked for that; failed otherwise."""
    delivered = [o for o in answers if o.ok]
    if delivered:
        return Written(n.id, n.kind, "sent", "SENT", message_id=delivered[0].message_id, sent_at=now)
    retry = [o.retry_after for o in answers if o.retry_after is not None]
    if retry and n.attempts < MAX_ATTEMPTS:
        # Back off: at least what FCM asked for, doubling with each attempt.
        delay = max(max(retry), 2**n.attempts)
        return Written(
            n.id, n.kind, "retried", "QUEUED", f"RETRY: {answers[0].code}", due_at=now + timedelta(seconds=delay)
        )
    return Written(n.id, n.kind, "failed", "FAILED", f"FCM: {', '.join(sorted({str(o.code) for o in answers}))}")


async def record(rows: list[Written], result: DispatchResult) -> None:
    """The outcomes of a batch, written in one transaction with the kinds that keep
    their own record of them (RECORDED), then counted."""
    if not rows:
        return
    async with in_transaction() as conn:
        await notifications.record_outcomes(
            [notifications.Outcome(w.id, w.state, w.reason, w.message_id, w.sent_at, w.due_at) for w in rows], conn
        )
        for kind, hook in RECORDED.items():
            of_kind = [w for w in rows if w.kind == kind]
            if of_kind:
                await hook(conn, of_kind)
    by_label: dict[tuple[str, str], int] = defaultdict(int)  # (kind, outcome): one metric call each per batch
    for w in rows:
        by_label[w.kind, w.outcome] += 1
        setattr(result, w.outcome, getattr(result, w.outcome) + 1)
        if w.outcome == "suppressed":
            result.reasons[w.reason.split(":")[0]] += 1
    for (kind, outcome), count in by_label.items():
        NOTIFICATIONS.labels(kind, outcome).inc(count)
