"""Two `loyalty serve` processes on one database, as a scaled-out deployment runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from api.relay import encode_cursor
from domain import db
from tests.conftest import DOCUMENTS, Socket
from tests.processes import LOYALTY, free_port, loyalty_env, stop


async def _ready(proc: subprocess.Popen, port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert proc.poll() is None, "loyalty serve exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("not ready")


async def _cli(*args: str, env: dict, cwd: Path) -> str:
    proc = await asyncio.create_subprocess_exec(
        LOYALTY, *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode().strip()


async def test_a_purchase_on_one_process_reaches_a_subscriber_on_another(tmp_path: Path, database):
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs LOYALTY_TEST_DATABASE_URL")
    server = db.credentials_from_url(url)
    name = f"loyalty_two_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    env = loyalty_env(LOYALTY_DATABASE_URL=db.Database({**server, "database": name}).dsn(), LOYALTY_JWT_SECRET="k" * 40)
    procs = []
    try:
        ports = [free_port(), free_port()]
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [LOYALTY, "serve", "--port", str(port), "--log-level", "warning"], cwd=tmp_path, env=env
                )
            )
        await asyncio.gather(*(_ready(p, port) for p, port in zip(procs, ports, strict=True)))
        a, b = (f"127.0.0.1:{p}" for p in ports)

        staff = await _cli("token", "--role", "staff", "--subject", "till", env=env, cwd=tmp_path)
        async with httpx.AsyncClient(base_url=f"http://{a}", headers={"Authorization": f"Bearer {staff}"}) as pos:
            enrolled = await pos.post(
                "/graphql", json={"query": DOCUMENTS["EnrollMember"][1], "variables": {"email": "ana@example.com"}}
            )
            member_id = enrolled.json()["data"]["enrollMember"]["member"]["id"]
            member = await _cli("token", "--role", "member", "--subject", member_id, env=env, cwd=tmp_path)

            sock = await Socket.open(b, member)  # subscribed on process B
            # From the first change on: the replayed welcome bonus proves the subscription is live.
            await sock.subscribe(
                "subscription($after: String) { walletUpdated(after: $after) { wallet { balance }"
                " entry { kind amount } } }",
                {"after": encode_cursor(0)},
            )
            welcome = (await sock.receive(timeout=5))["payload"]["data"]["walletUpdated"]
            assert welcome["entry"]["kind"] == "BONUS"
            started = time.monotonic()
            recorded = await pos.post(
                "/graphql",
                json={
                    "query": DOCUMENTS["RecordPurchase"][1],
                    "variables": {
                        "memberId": member_id,
                        "externalId": "two-1",
                        "amount": "8.00",
                        "currency": "EUR",
                        "channel": "STORE",
                        "storeId": None,
                    },
                },
            )  # recorded through process A
            assert recorded.json()["data"]["recordPurchase"]["userErrors"] == []
            message = await sock.receive(timeout=1.0)  # the contract: within one second
            elapsed = time.monotonic() - started
            update = message["payload"]["data"]["walletUpdated"]
            assert update["entry"]["kind"] == "EARN" and update["entry"]["amount"] == 80
            assert update["wallet"]["balance"] == 100 + 80
            print(f"commit on A to receipt on B: {elapsed * 1000:.0f} ms (includes the HTTP round trip)")
            await sock.close()
    finally:
        for p in procs:
            stop(p)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
