"""Observed as it runs. `loyalty serve --workers 2 --log-format json`: whichever process
answers the scrape, /metrics counts the requests every process served; every line on
stderr is a JSON object, and the access lines carry the ids of the requests they record.
`loyalty worker --metrics-port --log-format json`: the pushes it sent, on its own port,
and its log lines as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import DELIVERY_PROGRAM, Samples, parse, scratch_database
from tests.processes import LOYALTY, free_port, loyalty_env, stop, wait_ready

REQUESTS = 24
METRICS_TOKEN = "scraper-token-" + "m" * 20


def _scrape(port: int) -> Samples:
    response = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_two_processes_one_scrape_and_json_lines(tmp_path: Path):
    async with scratch_database("loyalty_obs") as database:
        env = loyalty_env(
            LOYALTY_DATABASE_URL=database.dsn(), LOYALTY_JWT_SECRET="o" * 40, LOYALTY_METRICS_TOKEN=METRICS_TOKEN
        )
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        port = free_port()
        stderr = tmp_path / "stderr.log"
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                [LOYALTY, "serve", "--port", str(port), "--workers", "2", "--no-worker", "--log-format", "json"],
                cwd=tmp_path,
                env=env,
                stderr=err,
            )
            try:
                wait_ready(proc, port)
                for i in range(REQUESTS):  # a connection each, so that both processes take some
                    response = httpx.post(
                        f"http://127.0.0.1:{port}/graphql",
                        json={"query": "query Ping { __typename }"},
                        headers={"X-Request-Id": f"obs-{i}"},
                    )
                    assert response.json() == {"data": {"__typename": "Query"}}
                ping = {"operation": "Ping", "outcome": "ok"}
                totals = {_scrape(port)("loyalty_graphql_request_duration_seconds_count", **ping) for _ in range(6)}
                assert totals == {REQUESTS}  # every scrape, whichever process answered it
            finally:
                stop(proc)

    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "uvicorn.access" and "/graphql" in line["message"]]
    assert sorted(line["request_id"] for line in access) == sorted(f"obs-{i}" for i in range(REQUESTS))
    assert len({line["pid"] for line in access}) == 2, "one process served every request: nothing was summed"
    for line in lines:
        assert {"time", "level", "logger", "message", "pid"} <= set(line), line


async def test_a_worker_alone_serves_its_counts_on_its_metrics_port(tmp_path: Path):
    import asyncio

    from domain import db
    from tests.seed import due_notifications

    async with scratch_database("loyalty_wmetrics") as database:
        program = tmp_path / "program.toml"
        program.write_text(DELIVERY_PROGRAM)  # no quiet hours: the sends happen whatever the hour
        env = loyalty_env(
            LOYALTY_DATABASE_URL=database.dsn(), LOYALTY_JWT_SECRET="w" * 40, LOYALTY_PROGRAM=str(program)
        )
        assert subprocess.run([LOYALTY, "migrate"], env=env, cwd=tmp_path, capture_output=True).returncode == 0
        conn = await db.raw_connection(database.credentials)
        try:
            await due_notifications(conn, 5, "W")
        finally:
            await conn.close()
        port = free_port()
        stderr = tmp_path / "worker.log"
        with stderr.open("w") as err:
            proc = subprocess.Popen(
                [LOYALTY, "worker", "--metrics-port", str(port), "--log-format", "json"],
                env=env,
                cwd=tmp_path,
                stderr=err,
            )
        try:
            sent = 0.0
            for _ in range(300):
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                except httpx.TransportError:
                    response = None
                if response is not None:
                    sent = parse(response.text)("loyalty_notifications_total", kind="CAMPAIGN", outcome="sent")
                    if sent == 5:
                        break
                await asyncio.sleep(0.1)
            assert sent == 5
        finally:
            stop(proc)
    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "loyalty.push" and line["request_id"] is None for line in lines)  # the log backend
