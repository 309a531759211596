"""The background worker: periodic jobs on procrastinate (a PostgreSQL-backed job
queue), and the push dispatcher.

Several workers may run at once (and `loyalty serve` runs one in each process):
procrastinate records each periodic run once per schedule slot, so no periodic job
fires twice, and the dispatcher claims notifications with SKIP LOCKED and a lease."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import procrastinate

from domain import clock
from domain.program.config import Program
from domain.settings import Settings
from domain.tiers import service as tiers
from domain.wallets import service as wallets
from notifications import dispatch
from notifications.metrics import JOB_DURATION, JOB_RUNS
from notifications.nudges.birthday import queue_birthdays
from notifications.nudges.expiry import queue_expiry_warnings
from notifications.push import FcmSender, LogSender

log = logging.getLogger("loyalty.worker")

jobs = procrastinate.Blueprint()


@dataclass
class Runtime:
    program: Program
    sender: LogSender | FcmSender
    batch: int = 500
    lease: timedelta = timedelta(minutes=2)


_runtime: Runtime | None = None


def runtime() -> Runtime:
    assert _runtime is not None, "the worker has not started"
    return _runtime


def observed(job):
    """Counts each run of a periodic job, and its failures, by the job's name."""

    @functools.wraps(job)
    async def run(*args, **kwargs):
        started = time.perf_counter()
        try:
            await job(*args, **kwargs)
        except Exception:
            JOB_RUNS.labels(job.__name__, "error").inc()
            raise
        finally:
            JOB_DURATION.labels(job.__name__).observe(time.perf_counter() - started)
        JOB_RUNS.labels(job.__name__, "ok").inc()

    return run


@jobs.periodic(cron="0 * * * *")  # hourly: every time zone reaches the birthday hour
@jobs.task(name="birthdays", queueing_lock="birthdays")
@observed
async def birthdays(timestamp: int) -> None:
    log.info("birthdays: %d greetings queued", await queue_birthdays(runtime().program))


@jobs.periodic(cron="10 * * * *")
@jobs.task(name="expiry_warnings", queueing_lock="expiry_warnings")
@observed
async def expiry_warnings(timestamp: int) -> None:
    log.info("expiry warnings: %d queued", await queue_expiry_warnings(runtime().program))


@jobs.periodic(cron="5 0 * * *")  # daily
@jobs.task(name="expire_points", queueing_lock="expire_points")
@observed
async def expire_points(timestamp: int) -> None:
    run = await wallets.run_expiry(runtime().program)
    log.info("expiry: released %d members' pending points, expired %d", run.released_members, run.expired)


@jobs.periodic(cron="20 0 * * *")  # daily
@jobs.task(name="requalify_tiers", queueing_lock="requalify_tiers")
@observed
async def requalify_tiers(timestamp: int) -> None:
    log.info("requalification: %d members moved", await tiers.requalify_due(runtime().program, clock.now()))


def sender_for(settings: Settings) -> LogSender | FcmSender:
    if settings.push_backend == "firebase":
        if settings.firebase_credentials is None:
            raise ValueError("LOYALTY_PUSH_BACKEND=firebase needs LOYALTY_FIREBASE_CREDENTIALS")
        return FcmSender(settings.firebase_credentials, endpoint=settings.fcm_endpoint)
    return LogSender()


def job_app(dsn: str) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    app.add_tasks_from(jobs, namespace="loyalty")
    return app


async def dispatch_forever(rt: Runtime, poll_seconds: float = 1.0) -> None:
    """Send whatever is due, as it becomes due."""
    while True:
        try:
            result = await dispatch.dispatch_due(rt.program, rt.sender, batch=rt.batch, lease=rt.lease)
            if result.claimed:
                log.info("push: %s", {k: v for k, v in vars(result).items() if v and k != "reasons"})
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            JOB_RUNS.labels("push_dispatch", "error").inc()
            log.exception("push dispatch failed; retrying")
        await asyncio.sleep(poll_seconds)


async def run(settings: Settings, program: Program, dsn: str) -> None:
    """Run the periodic jobs and the dispatcher until cancelled."""
    global _runtime
    _runtime = Runtime(
        program, sender_for(settings), settings.push_batch, timedelta(seconds=settings.push_lease_seconds)
    )
    app = job_app(dsn)
    try:
        async with app.open_async():
            await asyncio.gather(
                app.run_worker_async(install_signal_handlers=False, concurrency=2, name="loyalty-worker"),
                dispatch_forever(_runtime),
            )
    finally:
        with contextlib.suppress(Exception):
            await _runtime.sender.close()
