"""bench/earn: RecordPurchase over HTTP at 16 concurrent clients against a running
`loyalty serve`, beside pgbench's TPC-B on the same PostgreSQL in the same run.

    .venv/bin/python bench/earn.py [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                   [--seconds 20] [--connections 16] [--members 500]

Needs `wrk` and `pgbench` (Debian: apt-get install wrk postgresql-contrib). It creates
two scratch databases (loyalty_bench_*, pgbench_*) and drops them afterwards.
Every request is a new receipt, so each one credits points (the expensive path).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import uuid

import httpx
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


def pgbench_tps(creds: dict, seconds: int, clients: int) -> float:
    name = f"pgbench_{uuid.uuid4().hex[:8]}"
    asyncio.run(sql(creds, f'CREATE DATABASE "{name}"'))
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
        result = wrk_run(server.url, lua, args.seconds, args.connections)
        recorded = asyncio.run(fetchval(server.creds, "SELECT count(*) FROM purchases"))

    tps = pgbench_tps(db.credentials_from_url(args.database_url), args.seconds, args.connections)
    rps = result.rps
    print(
        f"RecordPurchase over HTTP, {args.connections} clients, {args.seconds} s (wrk), {args.workers} API process(es):"
    )
    print(f"  throughput {result.line()}")
    print(f"  purchases recorded: {recorded} of {result.requests} requests")
    print(f"pgbench TPC-B, scale 10, {args.connections} clients, same PostgreSQL: {tps:8.1f} tps")
    print(f"ratio RecordPurchase / TPC-B: {rps / tps:.2f}   (aim: 0.3 or better)")


if __name__ == "__main__":
    main()
