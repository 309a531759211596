"""Expiry: a warning N days (the program's list, e.g. 30 and 7) before points expire,
one per expiry date and warning, with the amount, the date and the cheapest reward
those points still buy; nothing when they are spent (or now expire later: an inactivity
policy, a marketer's extension) by the time it would be sent; the new date gets its own."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from domain import clock
from domain.notifications import service as notifications
from domain.program.config import Program
from domain.rewards import service as rewards
from domain.wallets import service as wallets
from notifications.recheck import Queued

KIND = "EXPIRY"


async def queue_expiry_warnings(program: Program, now: datetime | None = None) -> int:
    now = now or clock.now()
    warnings = sorted(program.notifications.expiry_warning_days)
    if not warnings:
        return 0
    rows = await wallets.expiring_points(now, now + timedelta(days=warnings[-1]))
    cheapest = await rewards.cheapest_for_everyone()
    queued = 0
    for row in rows:
        days_left = (row.expires_at - now).total_seconds() / 86400
        # The closest warning that is due: points 5 days out get the 7-day one only.
        warning = next(n for n in warnings if days_left <= n)
        amount = row.amount
        day = row.expires_at.astimezone(program.zone).date() - timedelta(days=1)  # last day to use them
        affordable = [r for r in cheapest if r.points_cost <= amount]
        body = f"{amount} points expire after {day:%d %B}."
        if affordable:
            body += f" They still buy {affordable[-1].name}."
        queued += await notifications.enqueue(
            row.member_id,
            kind=KIND,
            title="Your points are about to expire",
            body=body,
            dedupe_key=f"expiry:{row.member_id}:{row.expires_at.isoformat()}:{warning}",
            due_at=now,
            data={"amount": amount, "expiresAt": row.expires_at.isoformat(), "lastDay": day.isoformat()},
        )
    return queued


async def stale(queued: list[Queued]) -> dict[uuid.UUID, str]:
    """The warnings whose points are all spent (or expired) by now, checked again right
    before sending: one statement for the batch."""
    warned = [q for q in queued if "expiresAt" in q.data]
    if not warned:
        return {}
    spent = await wallets.all_spent([(q.id, q.member_id, datetime.fromisoformat(q.data["expiresAt"])) for q in warned])
    return dict.fromkeys(spent, "NOTHING_TO_EXPIRE: the points were spent or now expire later")
