"""Journeys in the worker: the `journeys` job (every minute) records new occurrences and
fires the due ones (`domain.journeys`); their pushes are queued as kind JOURNEY and the
dispatcher sends them like any other push (consent, quiet hours, caps, priority)."""

from __future__ import annotations

from datetime import datetime

from domain.journeys import service as journeys
from domain.program.config import Program

KIND = journeys.KIND


async def run_due(program: Program, now: datetime | None = None) -> journeys.Ran:
    return await journeys.run(program, now)


async def job(program: Program) -> str:
    ran = await run_due(program)
    return f"{ran.found} journey occurrences, {ran.fired} fired, {ran.skipped} skipped"
