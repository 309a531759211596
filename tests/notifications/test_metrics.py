"""The worker's series on GET /metrics: notifications sent through the real
firebase-admin client to the fake FCM, by kind and outcome; periodic job runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import clock
from domain.notifications import service as notifications
from notifications import worker
from notifications.dispatch import dispatch_due
from tests.conftest import scrape
from tests.notifications.conftest import PROGRAM, at, member

SENT = "loyalty_notifications_total"


async def test_each_outcome_is_counted_by_kind(client, fcm, sender):
    at(datetime(2030, 3, 1, 12, 0, tzinfo=UTC))  # midday: outside the quiet hours
    ok = await member("ok@example.com", token="token-ok-1")
    gone = await member("gone@example.com", token="unregistered-gone-1")
    shy = await member("shy@example.com", push=False)
    now = clock.now()
    await notifications.enqueue(ok, kind="CAMPAIGN", title="Hi", body="1", dedupe_key="m-1", due_at=now)
    await notifications.enqueue(ok, kind="EXPIRY", title="Hi", body="2", dedupe_key="m-2", due_at=now)
    await notifications.enqueue(gone, kind="CAMPAIGN", title="Hi", body="3", dedupe_key="m-3", due_at=now)
    await notifications.enqueue(shy, kind="CAMPAIGN", title="Hi", body="4", dedupe_key="m-4", due_at=now)
    before = await scrape(client)
    result = await dispatch_due(PROGRAM, sender)
    assert (result.sent, result.failed, result.suppressed) == (2, 1, 1)
    assert len(fcm.delivered) == 2
    after = await scrape(client)
    moved = {
        (kind, outcome): after(SENT, kind=kind, outcome=outcome) - before(SENT, kind=kind, outcome=outcome)
        for kind in ("CAMPAIGN", "EXPIRY")
        for outcome in ("sent", "failed", "suppressed", "deferred", "retried")
    }
    assert {k: v for k, v in moved.items() if v} == {
        ("CAMPAIGN", "sent"): 1,
        ("EXPIRY", "sent"): 1,
        ("CAMPAIGN", "failed"): 1,  # FCM: UNREGISTERED
        ("CAMPAIGN", "suppressed"): 1,  # no consent
    }


async def test_a_late_evening_push_counts_as_deferred(client, fcm, sender):
    at(datetime(2030, 3, 1, 23, 0, tzinfo=UTC))  # quiet hours in UTC
    late = await member("late@example.com", token="token-late-1")
    await notifications.enqueue(late, kind="BIRTHDAY", title="Hi", body="Late", dedupe_key="d-1", due_at=clock.now())
    before = await scrape(client)
    assert (await dispatch_due(PROGRAM, sender)).deferred == 1
    after = await scrape(client)
    assert after(SENT, kind="BIRTHDAY", outcome="deferred") == before(SENT, kind="BIRTHDAY", outcome="deferred") + 1
    assert fcm.delivered == []


async def test_a_periodic_job_run_is_counted(client, database):
    before = await scrape(client)
    await worker.run_job(worker.PERIODIC["birthdays"], PROGRAM, database.dsn())  # as the schedule runs it
    after = await scrape(client)
    runs = "loyalty_job_runs_total"
    assert after(runs, job="birthdays", outcome="ok") == before(runs, job="birthdays", outcome="ok") + 1
    assert after(runs, job="birthdays", outcome="error") == before(runs, job="birthdays", outcome="error")
    took = "loyalty_job_duration_seconds_count"
    assert after(took, job="birthdays") == before(took, job="birthdays") + 1


async def test_a_failed_job_run_is_counted_as_an_error(client, database):
    expiry_warnings = worker.PERIODIC["expiry_warnings"]
    before = await scrape(client)
    with pytest.raises(OSError):  # its database cannot be reached: the run fails
        await worker.run_job(expiry_warnings, PROGRAM, "postgres://postgres@127.0.0.1:1/nowhere")
    after = await scrape(client)
    runs = "loyalty_job_runs_total"
    error = {"job": "expiry_warnings", "outcome": "error"}
    assert after(runs, **error) == before(runs, **error) + 1
    ok = {"job": "expiry_warnings", "outcome": "ok"}
    assert after(runs, **ok) == before(runs, **ok)
