"""The worker as it runs in production: `loyalty worker` processes, the real
firebase-admin client, the fake FCM server; one of them killed mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from domain import clock, db
from tests.conftest import DELIVERY_PROGRAM
from tests.processes import LOYALTY, loyalty_env, until
from tests.seed import due_notifications


async def test_a_worker_killed_mid_run_loses_nothing_and_doubles_at_most_a_batch(fcm, tmp_path, database):
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs LOYALTY_TEST_DATABASE_URL")
    clock.reset()
    server = db.credentials_from_url(url)
    name = f"loyalty_kill_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    creds = {**server, "database": name}
    program = tmp_path / "program.toml"
    program.write_text(DELIVERY_PROGRAM)
    batch = 50
    env = loyalty_env(
        LOYALTY_DATABASE_URL=db.Database(creds).dsn(),
        LOYALTY_JWT_SECRET="w" * 40,
        LOYALTY_PROGRAM=str(program),
        LOYALTY_PUSH_BACKEND="firebase",
        LOYALTY_FIREBASE_CREDENTIALS=str(fcm.credentials),
        LOYALTY_FCM_ENDPOINT=fcm.endpoint,
        LOYALTY_PUSH_BATCH=str(batch),
        LOYALTY_PUSH_LEASE_SECONDS="2",
    )
    worker = None
    try:
        migrate = await asyncio.create_subprocess_exec(LOYALTY, "migrate", env=env, cwd=tmp_path)
        assert await migrate.wait() == 0
        conn = await db.raw_connection(creds)
        await due_notifications(conn, 1000, "K")

        worker = subprocess.Popen([LOYALTY, "worker"], env=env, cwd=tmp_path)

        async def some_sent() -> bool:
            return len(fcm.delivered) >= 300

        await until(some_sent, 60)
        worker.send_signal(signal.SIGKILL)  # no goodbye: killed between sends and their commits
        worker.wait()
        killed_at = len(fcm.delivered)
        assert killed_at < 1000, "the run finished before the kill: nothing was tested"

        worker = subprocess.Popen([LOYALTY, "worker"], env=env, cwd=tmp_path)

        async def all_sent() -> bool:
            return await conn.fetchval("SELECT count(*) FROM notifications WHERE state = 'SENT'") == 1000

        await until(all_sent, 90)
        tokens = [m["token"] for m in fcm.delivered]
        assert set(tokens) == {f"token-K{i:09d}" for i in range(1, 1001)}  # every one sent
        duplicates = len(tokens) - len(set(tokens))
        print(f"killed after {killed_at} deliveries; {duplicates} duplicates (batch {batch})")
        assert duplicates <= batch  # at most the batch in flight at the kill
        ids = {json.dumps(m["data"]["notificationId"]) for m in fcm.delivered}
        assert len(ids) == 1000
        await conn.close()
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_two_workers_run_each_periodic_slot_once(tmp_path):
    """Procrastinate records a periodic task's run once per schedule slot, however many
    workers defer it: the guarantee our hourly and daily jobs rely on."""
    import sys

    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs LOYALTY_TEST_DATABASE_URL")
    server = db.credentials_from_url(url)
    name = f"loyalty_periodic_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    creds = {**server, "database": name}
    try:
        await db.migrate(creds)  # our migrations apply procrastinate's schema too
        probe = str(Path(__file__).resolve().parents[1] / "periodic_probe.py")
        dsn = db.Database(creds).dsn()
        workers = [await asyncio.create_subprocess_exec(sys.executable, probe, dsn, "4", f"w{i}") for i in range(2)]
        assert [await w.wait() for w in workers] == [0, 0]
        conn = await db.raw_connection(creds)
        per_slot = await conn.fetch(
            "SELECT (args->>'timestamp')::bigint AS slot, count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = 'probe:tick' GROUP BY 1"
        )
        await conn.close()
        assert len(per_slot) >= 2  # both workers ran across several seconds
        assert {r["n"] for r in per_slot} == {1}  # and no slot ran twice
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
