"""bench/earn: RecordPurchase over HTTP at 16 concurrent clients against a running
`loyalty serve`, beside pgbench's TPC-B on the same PostgreSQL in the same run.

    .venv/bin/python bench/earn.py [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                   [--seconds 20] [--connections 16] [--members 500]

Needs `wrk` and `pgbench` (Debian: apt-get install wrk postgresql-contrib). It creates
two scratch databases (loyalty_bench_*, pgbench_*) and drops them afterwards.
Every request is a new receipt, so each one credits points (the expensive path).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from domain import db

LOYALTY = str(Path(sys.executable).with_name("loyalty"))
SECRET = "bench-signing-key-" + "x" * 32

LUA = r"""
local counter = 0
local members = {}
local token = "%TOKEN%"
for id in string.gmatch("%MEMBERS%", "[^,]+") do table.insert(members, id) end
local prefix = ""

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1e9)))
end

function init(args)
  prefix = tid
end

request = function()
  counter = counter + 1
  local member = members[(counter %% #members) + 1]
  local body = '{"query":"mutation RecordPurchase($memberId: ID!, $externalId: String!, $amount: Decimal!, ' ..
    '$currency: String!, $channel: Channel!, $storeId: ID) { recordPurchase(input: {memberId: $memberId, ' ..
    'externalId: $externalId, amount: $amount, currency: $currency, channel: $channel, storeId: $storeId}) ' ..
    '{ purchase { id externalId pointsEarned } wallet { id balance pendingBalance } ' ..
    'userErrors { code message field } } }",' ..
    '"variables":{"memberId":"' .. member .. '","externalId":"' .. prefix .. '-' .. counter ..
    '","amount":"12.50","currency":"EUR","channel":"STORE","storeId":"bench"}}'
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d p50=%.3f p99=%.3f seconds=%.3f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _sql(creds: dict, *statements: str) -> None:
    conn = await db.raw_connection(creds)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


def pgbench_tps(creds: dict, seconds: int, clients: int) -> float:
    name = f"pgbench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(creds, f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "PGHOST": creds["host"], "PGPORT": str(creds["port"]), "PGUSER": creds["user"]}
    if creds.get("password"):
        env["PGPASSWORD"] = creds["password"]
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", name], env=env, check=True, capture_output=True)
        out = subprocess.run(
            ["pgbench", "-c", str(clients), "-j", "2", "-T", str(seconds), name],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return float(re.search(r"tps = ([0-9.]+)", out).group(1))
    finally:
        asyncio.run(_sql(creds, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="loyalty serve --workers")
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed: apt-get install wrk postgresql-contrib")

    server = db.credentials_from_url(args.database_url)
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(server, f'CREATE DATABASE "{name}"'))
    creds = {**server, "database": name}
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_DATABASE_URL=db.Database(creds).dsn(), LOYALTY_JWT_SECRET=SECRET)
    home = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port), "--log-level", "warning", "--workers", str(args.workers)],
        cwd=home,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        staff = subprocess.run(
            [LOYALTY, "token", "--role", "staff", "--subject", "bench", "--ttl", "3600"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        ids = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {staff}"}) as client:
            for i in range(args.members):
                r = client.post(
                    "/graphql",
                    json={
                        "query": "mutation($e: String!) { enrollMember(input: {email: $e}) { member { id } } }",
                        "variables": {"e": f"bench{i}@example.com"},
                    },
                )
                ids.append(r.json()["data"]["enrollMember"]["member"]["id"])
        script = Path(home) / "earn.lua"
        script.write_text(LUA.replace("%TOKEN%", staff).replace("%MEMBERS%", ",".join(ids)).replace("%%", "%"))
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        m = re.search(r"BENCH requests=(\d+) errors=(\d+) p50=([0-9.]+) p99=([0-9.]+) seconds=([0-9.]+)", out)
        requests, errors, p50, p99, secs = int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5])
        recorded = asyncio.run(_count(creds))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        asyncio.run(_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(home, ignore_errors=True)

    tps = pgbench_tps(server, args.seconds, args.connections)
    rps = requests / secs
    print(
        f"RecordPurchase over HTTP, {args.connections} clients, {args.seconds} s (wrk), {args.workers} API process(es):"
    )
    print(f"  throughput {rps:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   errors {errors}")
    print(f"  purchases recorded: {recorded} of {requests} requests")
    print(f"pgbench TPC-B, scale 10, {args.connections} clients, same PostgreSQL: {tps:8.1f} tps")
    print(f"ratio RecordPurchase / TPC-B: {rps / tps:.2f}   (aim: 0.25 or better)")


async def _count(creds: dict) -> int:
    conn = await db.raw_connection(creds)
    try:
        return await conn.fetchval("SELECT count(*) FROM purchases")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
