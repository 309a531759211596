"""Sending what is due: claim a batch, apply the policy, push, record the outcome.

A batch is claimed with a lease (`SENDING` until `claimed_until`) under
`FOR UPDATE SKIP LOCKED`, so two workers never take the same notification. A worker
that dies mid-batch leaves its claims to expire; they are sent again after the lease:
at most the batch in flight can be sent twice, and nothing is lost."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise import connections

from domain import clock
from domain.notifications import service as notifications
from domain.program.config import Program
from notifications import policy
from notifications.metrics import NOTIFICATIONS
from notifications.nudges import expiry
from notifications.push import Outcome, Push

log = logging.getLogger("loyalty.push")

LEASE = timedelta(minutes=2)
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


async def claim(program: Program, now: datetime, limit: int, lease: timedelta = LEASE) -> list[dict]:
    """Take up to `limit` due notifications, highest priority first.

    Each kind's queue is read in due order from its index (notifications_queue), in the
    program's priority order, so a claim costs its batch, not the whole backlog."""
    conn = connections.get("default")
    # A worker that died mid-batch: its claims go back to the queue, first in line.
    await conn.execute_query(
        "UPDATE notifications SET state = 'QUEUED' WHERE state = 'SENDING' AND claimed_until < $1", [now]
    )
    return await conn.execute_query_dict(
        """
        WITH due AS (
            -- a nested loop over the kinds in priority order: the first kinds fill the batch
            SELECT q.id FROM unnest($4::text[]) AS k(kind)
            CROSS JOIN LATERAL (
                SELECT id FROM notifications
                WHERE state = 'QUEUED' AND kind = k.kind AND due_at <= $1
                ORDER BY due_at, id
                LIMIT $2 FOR UPDATE SKIP LOCKED
            ) q
            LIMIT $2
        ), claimed AS (
            UPDATE notifications n SET state = 'SENDING', claimed_until = $3, attempts = n.attempts + 1
            WHERE n.id = ANY(ARRAY(SELECT id FROM due))  -- by primary key: a join would read the table
            RETURNING n.id, n.member_id, n.kind, n.title, n.body, n.data, n.attempts, n.due_at
        )
        SELECT * FROM claimed ORDER BY array_position($4, kind), due_at, id  -- the caps go to the first
        """,
        [now, limit, now + lease, list(program.notifications.priority)],
    )


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


async def _dispatch(program: Program, sender, claimed: list[dict], now: datetime, result: DispatchResult) -> None:
    conn = connections.get("default")
    rules = program.notifications
    member_ids = list({r["member_id"] for r in claimed})
    members = {
        r["id"]: r
        for r in await conn.execute_query_dict(
            "SELECT id, timezone, push_marketing, location_nudges FROM members WHERE id = ANY($1::uuid[])",
            [member_ids],
        )
    }
    devices: dict = defaultdict(list)
    for d in await conn.execute_query_dict(
        "SELECT member_id, fcm_token FROM devices WHERE member_id = ANY($1::uuid[])", [member_ids]
    ):
        devices[d["member_id"]].append(d["fcm_token"])
    counts = {
        r["member_id"]: r
        for r in await conn.execute_query_dict(
            """
            SELECT member_id, COUNT(*) FILTER (WHERE sent_at > $2) AS week, array_agg(sent_at) AS times
            FROM notifications WHERE member_id = ANY($1::uuid[]) AND state = 'SENT' AND sent_at > $2
            GROUP BY member_id
            """,
            [member_ids, now - timedelta(days=7)],
        )
    }
    sent_today: dict = defaultdict(int)
    sent_week: dict = defaultdict(int)
    for member_id, row in counts.items():
        zone = ZoneInfo(members[member_id]["timezone"]) if member_id in members else ZoneInfo("UTC")
        today = now.astimezone(zone).date()
        sent_week[member_id] = row["week"]
        sent_today[member_id] = sum(1 for t in row["times"] if t.astimezone(zone).date() == today)

    done = _Writes()
    to_send: list[tuple[dict, list[str]]] = []
    for n in claimed:
        member = members.get(n["member_id"])
        if member is None:
            continue
        zone = ZoneInfo(member["timezone"])
        decision = policy.decide(
            rules,
            kind=n["kind"],
            consents=member,
            zone=zone,
            now=now,
            sent_today=sent_today[n["member_id"]],
            sent_this_week=sent_week[n["member_id"]],
            has_devices=bool(devices[n["member_id"]]),
        )
        expires_at = _data(n).get("expiresAt") if n["kind"] == "EXPIRY" else None
        if decision.action == "SEND" and expires_at:
            if await expiry.still_expiring(n["member_id"], expires_at) <= 0:
                decision = policy.Decision("SUPPRESS", "NOTHING_TO_EXPIRE: the points were spent")
        if decision.action == "SUPPRESS":
            done.finish(n, "SUPPRESSED", reason=decision.reason)
            result.suppressed += 1
            result.reasons[decision.reason.split(":")[0]] += 1
        elif decision.action == "DEFER":
            done.requeue(n, decision.until, decision.reason)
            result.deferred += 1
        else:
            # count it now, so the rest of this batch sees the cap
            sent_today[n["member_id"]] += 1
            sent_week[n["member_id"]] += 1
            to_send.append((n, devices[n["member_id"]]))

    pushes = [
        Push(token, n["title"], n["body"], {"notificationId": str(n["id"]), "kind": n["kind"], **_data(n)})
        for n, tokens in to_send
        for token in tokens
    ]
    outcomes = await sender.send(pushes) if pushes else []
    by_token = iter(outcomes)
    dead: list[str] = []
    for n, tokens in to_send:
        answers: list[Outcome] = [next(by_token) for _ in tokens]
        dead += [t for t, o in zip(tokens, answers, strict=True) if o.prune]
        delivered = [o for o in answers if o.ok]
        if delivered:
            done.finish(n, "SENT", message_id=delivered[0].message_id, sent_at=now)
            result.sent += 1
            continue
        retry = [o.retry_after for o in answers if o.retry_after is not None]
        if retry and n["attempts"] < MAX_ATTEMPTS:
            # Back off: at least what FCM asked for, doubling with each attempt.
            delay = max(max(retry), 2 ** n["attempts"])
            done.requeue(n, now + timedelta(seconds=delay), f"RETRY: {answers[0].code}")
            result.retried += 1
        else:
            done.finish(n, "FAILED", reason=f"FCM: {', '.join(sorted({str(o.code) for o in answers}))}")
            result.failed += 1
    await done.write()
    result.pruned += await notifications.prune_tokens(dead)


def _data(n: dict) -> dict[str, str]:
    data = n["data"]
    if isinstance(data, str):
        data = json.loads(data)
    return {str(k): str(v) for k, v in (data or {}).items()}


class _Writes:
    """The outcomes of a batch, written in one statement at the end of it."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.outcomes: dict[tuple[str, str], int] = defaultdict(int)  # (kind, outcome): counted once per batch

    def finish(
        self,
        n: dict,
        state: str,
        *,
        reason: str | None = None,
        message_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> None:
        self.rows.append((n["id"], state, reason, message_id, sent_at, None))
        self.outcomes[n["kind"], state.lower()] += 1

    def requeue(self, n: dict, due_at: datetime, reason: str | None) -> None:
        self.rows.append((n["id"], "QUEUED", reason, None, None, due_at))
        self.outcomes[n["kind"], "retried" if reason and reason.startswith("RETRY") else "deferred"] += 1

    async def write(self) -> None:
        if not self.rows:
            return
        ids, states, reasons, message_ids, sent_ats, due_ats = (list(c) for c in zip(*self.rows, strict=True))
        await connections.get("default").execute_query(
            """
            UPDATE notifications n SET state = w.state, reason = w.reason, provider_message_id = w.message_id,
                   sent_at = w.sent_at, due_at = COALESCE(w.due_at, n.due_at), claimed_until = NULL
            FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
                 AS w(id, state, reason, message_id, sent_at, due_at)
            WHERE n.id = w.id
            """,
            [ids, states, reasons, message_ids, sent_ats, due_ats],
        )
        for (kind, outcome), n in self.outcomes.items():
            NOTIFICATIONS.labels(kind, outcome).inc(n)
