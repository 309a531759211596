"""Campaigns in the worker: start those whose time has come (recipients chosen and their
notifications queued, by `domain.campaigns`), then the dispatcher sends them like any
other push (policy, caps, quiet hours, batches, leases) and tells the campaign each
outcome as it records it (`recorded`, registered by kind in `notifications.dispatch.RECORDED`)."""

from __future__ import annotations

import logging
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from domain.campaigns import service as campaigns
from domain.program.config import Program

log = logging.getLogger("loyalty.campaigns")

KIND = campaigns.KIND
FINAL = {"SENT", "FAILED", "SUPPRESSED"}


async def start_due(program: Program, now: datetime | None = None) -> int:
    """Start every campaign that is due; returns how many notifications were queued."""
    started = await campaigns.start_due(program, now)
    for s in started:
        log.info("campaign %s started: %d recipients, %d held out", s.campaign_id, s.recipients, s.holdout)
    return sum(s.queued for s in started)


async def recorded(conn: BaseDBAsyncClient, rows: list) -> int:
    """The final outcomes of a batch's campaign notifications, in the dispatcher's
    transaction (a retry or a deferral is not final: the recipient stays pending)."""
    return await campaigns.record_outcomes(
        conn,
        [campaigns.Outcome(w.id, w.state, w.reason, w.sent_at) for w in rows if w.state in FINAL],
    )
