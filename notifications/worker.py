"""The background worker: periodic jobs on procrastinate (a PostgreSQL-backed job
queue), and the push dispatcher.

Several workers may run at once (and `loyalty serve` runs one in each process):
procrastinate records each periodic run once per schedule slot, so no periodic job
fires twice, and the dispatcher claims notifications with SKIP LOCKED and a lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import procrastinate

from domain import clock, db
from domain.draws import service as draws
from domain.program.config import Program
from domain.segments import service as segments
from domain.settings import Settings
from domain.tiers import service as tiers
from notifications import campaigns, dispatch, journeys
from notifications.metrics import JOB_DURATION, JOB_RUNS
from notifications.nudges.birthday import queue_birthdays
from notifications.nudges.expiry import queue_expiry_warnings
from notifications.push import FcmSender, LogSender

log = logging.getLogger("loyalty.worker")


@dataclass
class Runtime:
    program: Program
    sender: LogSender | FcmSender
    batch: int = 500
    lease: timedelta = timedelta(minutes=2)
    dsn: str = ""


_runtime: Runtime | None = None


def runtime() -> Runtime:
    assert _runtime is not None, "the worker has not started"
    return _runtime


async def _birthdays(program: Program) -> str:
    return f"{await queue_birthdays(program)} greetings queued"


async def _expiry_warnings(program: Program) -> str:
    return f"{await queue_expiry_warnings(program)} warnings queued"


async def _expire_points(program: Program) -> str:
    run = await tiers.run_expiry(program)
    return f"released {run.released_members} members' pending points, expired {run.expired}"


async def _requalify_tiers(program: Program) -> str:
    return f"{await tiers.requalify_due(program, clock.now())} members moved"


async def _recompute_segments(program: Program) -> str:
    run = await segments.recompute(program)
    return f"{run.entered} segment entries, {run.left} exits"


async def _draws(program: Program) -> str:
    return f"{await draws.draw_due(program)} draws drawn"


@dataclass(frozen=True)
class Periodic:
    """A job the worker runs on a schedule, and `loyalty jobs run` runs by hand. Each is
    idempotent: running it again, or beside another run, does nothing twice."""

    name: str
    cron: str
    when: str
    work: Callable[[Program], Awaitable[str]]


PERIODIC = {
    job.name: job
    for job in (
        # hourly: every time zone reaches the birthday hour once a day
        Periodic("birthdays", "0 * * * *", "hourly at :00", _birthdays),
        Periodic("expiry_warnings", "10 * * * *", "hourly at :10", _expiry_warnings),
        Periodic("expire_points", "5 0 * * *", "daily at 00:05 UTC", _expire_points),
        Periodic("requalify_tiers", "20 0 * * *", "daily at 00:20 UTC", _requalify_tiers),
        # time alone moves members between segments (no longer new, slipping away)
        Periodic("recompute_segments", "30 * * * *", "hourly at :30", _recompute_segments),
        # a draw closes at any minute: its winners are drawn within the minute after
        Periodic("draws", "* * * * *", "every minute", _draws),
        # welcome, win-back, congratulations, milestones, anniversaries: from committed rows
        Periodic("journeys", "* * * * *", "every minute", journeys.job),
    )
}
# Both numbers of a two-key advisory lock: ours (beside migrate's 727301) and the job's.
_JOB_LOCK = 727302


async def run_job(job: Periodic, program: Program, dsn: str) -> str:
    """One run of `job`, under a lock of its own (a PostgreSQL advisory lock, held on a
    connection of its own): a scheduled run and one by hand wait for each other."""
    started = time.perf_counter()
    try:
        conn = await db.raw_connection(db.credentials_from_url(dsn), application_name=f"loyalty-job-{job.name}")
        try:
            await db.lock_job(conn, _JOB_LOCK, job.name)
            said = await job.work(program)
        finally:
            await conn.close()  # the lock goes with the session
    except Exception:
        JOB_RUNS.labels(job.name, "error").inc()
        raise
    finally:
        JOB_DURATION.labels(job.name).observe(time.perf_counter() - started)
    JOB_RUNS.labels(job.name, "ok").inc()  # scheduled or by hand (`loyalty jobs run`)
    return said


def _scheduled(job: Periodic) -> Callable[[int], Awaitable[None]]:
    async def run(timestamp: int) -> None:
        rt = runtime()
        log.info("%s: %s", job.name, await run_job(job, rt.program, rt.dsn))

    run.__name__ = run.__qualname__ = job.name
    return run


def sender_for(settings: Settings) -> LogSender | FcmSender:
    if settings.push_backend == "firebase":
        if settings.firebase_credentials is None:
            raise ValueError("LOYALTY_PUSH_BACKEND=firebase needs LOYALTY_FIREBASE_CREDENTIALS")
        return FcmSender(settings.firebase_credentials, endpoint=settings.fcm_endpoint)
    return LogSender()


def job_app(dsn: str) -> procrastinate.App:
    """The job queue with each periodic job registered once, on this app (the same
    task names as before, "loyalty:<name>", so the queue's history still applies)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    for job in PERIODIC.values():
        task = app.task(name=f"loyalty:{job.name}", queueing_lock=job.name)(_scheduled(job))
        app.periodic(cron=job.cron)(task)
    return app


async def dispatch_forever(rt: Runtime, poll_seconds: float = 1.0) -> None:
    """Send whatever is due, as it becomes due."""
    while True:
        try:
            await campaigns.start_due(rt.program)
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
        program, sender_for(settings), settings.push_batch, timedelta(seconds=settings.push_lease_seconds), dsn
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
