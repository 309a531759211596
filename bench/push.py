"""bench/push: N due notifications through our whole path (claim, policy, record,
firebase-admin) into a local fake FCM, beside raw `send_each_async` of the same
messages to the same server in the same run.

    .venv/bin/python bench/push.py [--notifications 100000] [--database-url postgres://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from domain import db  # noqa: E402
from domain.program.config import parse  # noqa: E402
from notifications.dispatch import dispatch_due  # noqa: E402
from notifications.push import FcmSender, LogSender  # noqa: E402
from tests.fake_fcm import service_account  # noqa: E402
from tests.seed import due_notifications  # noqa: E402

# No quiet hours and no caps: this measures delivery, not policy outcomes.
PROGRAM = parse(
    (ROOT / "domain" / "program" / "demo.toml")
    .read_text()
    .replace("quiet_hours = { start = 21:00:00, end = 09:00:00 }", "quiet_hours = { start = 00:00:00, end = 00:00:00 }")
    .replace("max_per_day = 2", "max_per_day = 50"),
    "bench",
)

FAKE = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from tests.fake_fcm import FakeFcm
fake = FakeFcm()
fake.delivered = type("Count", (list,), {{"append": lambda self, m: None}})()  # keep nothing: count nothing
uvicorn.run(fake.app, host="127.0.0.1", port={port}, log_level="warning", workers=1)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--dispatchers", type=int, default=3, help="concurrent dispatchers for the no-network pass")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    n = args.notifications
    port = _port()
    fake = subprocess.Popen([sys.executable, "-c", FAKE.format(root=str(ROOT), port=port)])
    server = db.credentials_from_url(args.database_url)
    name = f"loyalty_push_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    creds = {**server, "database": name}
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.post(f"http://127.0.0.1:{port}/token")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        credentials = Path(tempfile.mkdtemp()) / "sa.json"
        credentials.write_text(json.dumps(service_account(f"http://127.0.0.1:{port}/token")))
        endpoint = f"http://127.0.0.1:{port}"

        await db.migrate(creds)
        await db.connect(creds, pool_max=8)
        conn = await db.raw_connection(creds)
        await due_notifications(conn, n, "B")
        tokens = [r["fcm_token"] for r in await conn.fetch("SELECT fcm_token FROM devices")]

        # Peer: firebase-admin's send_each_async, 500 at a time, the same concurrency, no database.
        sender = FcmSender(credentials, endpoint=endpoint)
        from firebase_admin import messaging

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            messages = [
                messaging.Message(
                    token=t, notification=messaging.Notification("Hello", "Come back soon"), data={"kind": "CAMPAIGN"}
                )
                for t in tokens
            ]
        from notifications.push import SEND_CHUNK

        gate = asyncio.Semaphore(2)  # what FcmSender uses

        async def raw(chunk):
            async with gate:
                return await messaging.send_each_async(chunk, app=sender._app)

        await raw(messages[:SEND_CHUNK])  # warm up: the OAuth token and the first connections
        started = time.perf_counter()
        batches = await asyncio.gather(*(raw(messages[i : i + SEND_CHUNK]) for i in range(0, n, SEND_CHUNK)))
        raw_seconds = time.perf_counter() - started
        raw_ok = sum(b.success_count for b in batches)

        started = time.perf_counter()
        result = await dispatch_due(PROGRAM, sender, batch=2000)
        ours_seconds = time.perf_counter() - started
        sent = await conn.fetchval("SELECT count(*) FROM notifications WHERE state = 'SENT'")
        await sender.close()

        # Our path without the network: the same N again through claim, policy and
        # record, handed to the log sender. What our side alone can sustain.
        await conn.execute(
            "UPDATE notifications SET state = 'QUEUED', sent_at = NULL, due_at = now() - interval '1 minute'"
        )
        await conn.execute("UPDATE notifications SET dedupe_key = dedupe_key || '-again'")
        logging.getLogger("loyalty.push").setLevel(logging.WARNING)
        started = time.perf_counter()
        log_sender = LogSender()
        # Several dispatchers share the work (SKIP LOCKED), as several workers would.
        await asyncio.gather(*(dispatch_due(PROGRAM, log_sender, batch=1000) for _ in range(args.dispatchers)))
        alone_seconds = time.perf_counter() - started
        await conn.close()
        await db.disconnect()
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    ours, peer = n / ours_seconds, n / raw_seconds
    print(f"{n} due notifications into a local fake FCM (firebase-admin, HTTP v1):")
    print(f"  ours (claim, policy, record, firebase-admin): {ours:8.0f} msg/s  ({sent} SENT, {result.failed} failed)")
    print(f"  ours without the network (log sender, {args.dispatchers} dispatchers): {n / alone_seconds:8.0f} msg/s")
    print(f"  peer (raw send_each_async, same messages):     {peer:8.0f} msg/s  ({raw_ok} accepted)")
    print(f"  ratio {ours / peer:.2f}   (aim: 0.7 or better; FCM's default quota is 600,000/min = 10,000/s)")


if __name__ == "__main__":
    asyncio.run(main())
