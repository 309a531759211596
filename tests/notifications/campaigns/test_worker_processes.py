"""Campaigns sent by `loyalty worker` processes (the real firebase-admin client, the fake
FCM): one worker killed mid-campaign and restarted, two workers on one campaign."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import uuid
from collections import Counter

from tests.conftest import DELIVERY_PROGRAM, scratch_database
from tests.processes import LOYALTY, loyalty_env, until
from tests.seed import members_with_devices

MEMBERS = 1000
BATCH = 50
TWO = 300  # members in the two-worker run (6 batches: both workers take some)


async def _campaign_due_now(conn, n: int, prefix: str) -> uuid.UUID:
    """`n` consenting bronze members with a device each, and a campaign to the bronze
    tier due now, as `scheduleCampaign` leaves it."""
    await members_with_devices(conn, n, prefix)
    campaign_id = uuid.uuid4()
    variant = {"key": "A", "weight": 100, "title": "Spring", "body": "New teas", "deep_link": None, "locales": {}}
    await conn.execute(
        """
        INSERT INTO campaigns (id, name, status, audience, variants, holdout_percent, attribution_days, send_at,
                               local_time, starts_at, created_at)
        VALUES ($1, 'Spring', 'SCHEDULED', $2, $3, 0, 7, now(), false, now(), now())
        """,
        campaign_id,
        json.dumps({"segment_keys": [], "tier_keys": ["bronze"], "member_ids": []}),
        json.dumps([variant]),
    )
    return campaign_id


def _env(database, fcm, tmp_path, lease_seconds: int) -> dict[str, str]:
    program = tmp_path / "program.toml"
    program.write_text(DELIVERY_PROGRAM)
    return loyalty_env(
        LOYALTY_DATABASE_URL=database.dsn(),
        LOYALTY_JWT_SECRET="w" * 40,
        LOYALTY_PROGRAM=str(program),
        LOYALTY_PUSH_BACKEND="firebase",
        LOYALTY_FIREBASE_CREDENTIALS=str(fcm.credentials),
        LOYALTY_FCM_ENDPOINT=fcm.endpoint,
        LOYALTY_PUSH_BATCH=str(BATCH),
        LOYALTY_PUSH_LEASE_SECONDS=str(lease_seconds),
    )


async def _prepared(database, env, tmp_path, prefix: str, members: int = MEMBERS):
    from domain import db

    migrate = await asyncio.create_subprocess_exec(LOYALTY, "migrate", env=env, cwd=tmp_path)
    assert await migrate.wait() == 0
    conn = await db.raw_connection(database.credentials)
    return conn, await _campaign_due_now(conn, members, prefix)


async def _all_answered(conn, campaign_id) -> bool:
    return await conn.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign_id) == "SENT"


def _stop(*workers) -> None:
    for w in workers:
        if w is not None and w.poll() is None:
            w.send_signal(signal.SIGTERM)
            w.wait(timeout=30)


async def test_a_worker_killed_mid_campaign_reaches_everyone_and_doubles_at_most_a_batch(fcm, tmp_path):
    async with scratch_database("loyalty_campaign_kill") as database:
        env = _env(database, fcm, tmp_path, lease_seconds=2)  # the dead worker's claims come back soon
        conn, campaign_id = await _prepared(database, env, tmp_path, "C")
        worker = None
        try:
            worker = subprocess.Popen([LOYALTY, "worker"], env=env, cwd=tmp_path)

            async def some_sent() -> bool:
                return len(fcm.delivered) >= 300

            await until(some_sent, 60)
            worker.send_signal(signal.SIGKILL)  # no goodbye: killed between sends and their commits
            worker.wait()
            killed_at = len(fcm.delivered)
            assert killed_at < MEMBERS, "the campaign finished before the kill: nothing was tested"

            worker = subprocess.Popen([LOYALTY, "worker"], env=env, cwd=tmp_path)
            await until(lambda: _all_answered(conn, campaign_id), 90)
            tokens = Counter(m["token"] for m in fcm.delivered)
            assert set(tokens) == {f"token-C{i:09d}" for i in range(1, MEMBERS + 1)}  # everyone reached
            twice = sum(n - 1 for n in tokens.values())
            print(f"killed after {killed_at} deliveries; {twice} sent twice (batch {BATCH})")
            assert twice <= BATCH  # at most the batch in flight at the kill
            assert max(tokens.values()) <= 2
            outcomes = await conn.fetch(
                "SELECT outcome, count(*) AS n FROM campaign_recipients WHERE campaign_id = $1 GROUP BY outcome",
                campaign_id,
            )
            assert {r["outcome"]: r["n"] for r in outcomes} == {"SENT": MEMBERS}
            await conn.close()
        finally:
            _stop(worker)


async def test_two_worker_processes_send_each_recipient_one_message(fcm, tmp_path):
    async with scratch_database("loyalty_campaign_two") as database:
        # A lease longer than any batch takes here: two workers on 2 shared cores can take
        # more than 2 s for a batch, and a lapsed lease is sent again (the dispatcher's rule).
        env = _env(database, fcm, tmp_path, lease_seconds=60)
        conn, campaign_id = await _prepared(database, env, tmp_path, "D", members=TWO)
        workers = []
        try:
            workers = [subprocess.Popen([LOYALTY, "worker"], env=env, cwd=tmp_path) for _ in range(2)]
            await until(lambda: _all_answered(conn, campaign_id), 90)
            tokens = Counter(m["token"] for m in fcm.delivered)
            assert set(tokens) == {f"token-D{i:09d}" for i in range(1, TWO + 1)}
            assert max(tokens.values()) == 1  # nobody twice
            chosen = await conn.fetchval("SELECT count(*) FROM campaign_recipients WHERE campaign_id = $1", campaign_id)
            assert chosen == TWO
            await conn.close()
        finally:
            _stop(*workers)
