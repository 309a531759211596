"""bench/earn: RecordPurchase over HTTP at 16 concurrent clients against a running
`loyalty serve`, beside pgbench's TPC-B on the same PostgreSQL in the same run.

    .venv/bin/python bench/earn.py [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                   [--seconds 20] [--connections 16] [--members 500]

Needs `wrk` and `pgbench` (Debian: apt-get install wrk postgresql-contrib). It creates
two scratch databases (loyalty_bench_*, pgbench_*) and drops them afterwards.
Every request is a new receipt, so each one credits points (the expensive path).

Beside each throughput, the CPU milliseconds each side spends per transaction: the
PostgreSQL server's processes (sampled every 0.2 s by pid, so a backend that exits
loses at most its last 0.2 s), our server's, pgbench's. On two cores shared by all of
them, throughput is about 2 cores / (their sum): the budget the aim leaves.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import httpx
import psutil
from harness import fetchval, loyalty_server, sql, wrk_arguments, wrk_run

from domain import db

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

"""


class PostgresCpu:
    """CPU seconds of the PostgreSQL server's processes while `running()` lasts."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @staticmethod
    def _sample() -> dict[int, float]:
        times = {}
        for process in psutil.process_iter(["name", "cpu_times"]):
            if process.info["name"] == "postgres" and process.info["cpu_times"] is not None:
                times[process.pid] = sum(process.info["cpu_times"][:2])
        return times

    @contextmanager
    def running(self):
        first, last, done = self._sample(), {}, threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                last.update(self._sample())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            done.set()
            sampler.join()
            last.update(self._sample())
            self.seconds = sum(t - first.get(pid, 0.0) for pid, t in last.items())


def cpu_seconds(process: psutil.Process) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def pgbench_tps(creds: dict, seconds: int, clients: int) -> tuple[float, int, float, float]:
    """TPS, transactions, and CPU seconds of PostgreSQL and of pgbench during the timed run."""
    name = f"pgbench_{uuid.uuid4().hex[:8]}"
    asyncio.run(sql(creds, f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "PGHOST": creds["host"], "PGPORT": str(creds["port"]), "PGUSER": creds["user"]}
    if creds.get("password"):
        env["PGPASSWORD"] = creds["password"]
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", name], env=env, check=True, capture_output=True)
        with PostgresCpu().running() as database:
            client = psutil.Popen(
                ["pgbench", "-c", str(clients), "-j", "2", "-T", str(seconds), name],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            client_cpu = 0.0
            while client.poll() is None:  # its CPU, read while it still exists
                client_cpu = max(client_cpu, cpu_seconds(client))
                time.sleep(0.2)
            out, _ = client.communicate()
        if client.returncode:
            raise SystemExit(f"pgbench failed: {out}")
        tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
        transactions = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
        return tps, transactions, database.seconds, client_cpu
    finally:
        asyncio.run(sql(creds, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = wrk_arguments()
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1, help="loyalty serve --workers")
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed: apt-get install wrk postgresql-contrib")

    with loyalty_server(args.database_url, "--workers", str(args.workers)) as server:
        staff = server.token("staff", "bench")
        ids = []
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {staff}"}) as client:
            for i in range(args.members):
                r = client.post(
                    "/graphql",
                    json={
                        "query": "mutation($e: String!) { enrollMember(input: {email: $e}) { member { id } } }",
                        "variables": {"e": f"bench{i}@example.com"},
                    },
                )
                ids.append(r.json()["data"]["enrollMember"]["member"]["id"])
        lua = LUA.replace("%TOKEN%", staff).replace("%MEMBERS%", ",".join(ids)).replace("%%", "%")
        ours = psutil.Process(server.proc.pid)
        before = cpu_seconds(ours)
        with PostgresCpu().running() as database:
            result = wrk_run(server.url, lua, args.seconds, args.connections)
        our_cpu = cpu_seconds(ours) - before
        recorded = asyncio.run(fetchval(server.creds, "SELECT count(*) FROM purchases"))

    tps, transactions, pg_cpu, client_cpu = pgbench_tps(
        db.credentials_from_url(args.database_url), args.seconds, args.connections
    )
    rps = result.rps
    per = max(1, result.requests)
    print(
        f"RecordPurchase over HTTP, {args.connections} clients, {args.seconds} s (wrk), {args.workers} API process(es):"
    )
    print(f"  throughput {result.line()}")
    print(f"  purchases recorded: {recorded} of {result.requests} requests")
    print(
        f"  CPU per purchase: PostgreSQL {1000 * database.seconds / per:.2f} ms,"
        f" our server {1000 * our_cpu / per:.2f} ms"
    )
    print(f"pgbench TPC-B, scale 10, {args.connections} clients, same PostgreSQL: {tps:8.1f} tps")
    print(
        f"  CPU per transaction: PostgreSQL {1000 * pg_cpu / max(1, transactions):.2f} ms,"
        f" pgbench {1000 * client_cpu / max(1, transactions):.2f} ms"
    )
    print(f"ratio RecordPurchase / TPC-B: {rps / tps:.2f}   (aim: 0.3 or better)")


if __name__ == "__main__":
    main()
