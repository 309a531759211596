"""bench/history: does a request cost more for a member with a long history?

    .venv/bin/python bench/history.py [--sizes 10,1000,100000] [--requests 100]
                                      [--database-url postgres://postgres@127.0.0.1:5432/postgres]

Three members on one `loyalty serve`, each given N purchases with their EARN entries and
lots spread over the last 360 days (inside the qualifying window, generated in SQL),
then, in rounds that take the members in turn (so drift hits each alike):
- `Me` (the app's document), sequential HTTP requests with the member's token;
- `RecordPurchase` (the till's document), sequential, a new receipt each;
- `walletUpdated`: a subscribed socket per member; the time from the purchase's
  answer (its commit acknowledged) to the update arriving on the socket.
Prints the median per request for each size and the ratio largest/smallest (aim: <= 1.2).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import websockets
from harness import SECRET, loyalty_server, wrk_arguments

from api.documents import operations_of
from domain import db
from domain.identity.tokens import Role, TokenIssuer

ROOT = Path(__file__).resolve().parents[1]
APP = operations_of([ROOT / "contract" / "operations" / "member-app.graphql"])
POS = operations_of([ROOT / "contract" / "operations" / "pos.graphql"])

# One member's history: purchases, their EARN entries and lots, evenly over 360 days;
# lots expire at midnight 400 days after their day (as a rolling policy has them).
HISTORY = """
WITH w AS (
    INSERT INTO wallets (id, member_id, kind, balance, pending, updated_at)
    VALUES (gen_random_uuid(), $1, 'POINTS', 0, 0, now())
    ON CONFLICT (member_id, kind) DO UPDATE SET updated_at = now() RETURNING id
), p AS (
    INSERT INTO purchases (id, member_id, channel, store_key, external_id, amount, currency, occurred_at,
                           points_earned, cashback_earned, refunded_amount, points_reversed, cashback_reversed,
                           shortfall)
    SELECT gen_random_uuid(), $1, 'STORE', 'bench', 'history-' || $1::text || '-' || i, 10.00, 'EUR',
           now() - interval '360 days' * (1 - i::float8 / $2), 10, 0, 0, 0, 0, 0
    FROM generate_series(1, $2) AS i
    RETURNING id, occurred_at
), e AS (
    INSERT INTO ledger_entries (wallet_id, member_id, kind, amount, balance_after, qualifying, description,
                                explanation, purchase_id, occurred_at)
    SELECT w.id, $1, 'EARN', 10, 10 * row_number() OVER (ORDER BY p.occurred_at), 10, 'history', '{}'::jsonb,
           p.id, p.occurred_at
    FROM p, w
), l AS (
    INSERT INTO lots (wallet_id, amount, remaining, state, earned_at, available_at, expires_at, purchase_id,
                      description, explanation, qualifying)
    SELECT w.id, 10, 10, 'AVAILABLE', p.occurred_at, p.occurred_at,
           date_trunc('day', p.occurred_at) + interval '400 days', p.id, 'history', '{}'::jsonb, 10
    FROM p, w
)
UPDATE wallets SET balance = balance + 10 * $2 WHERE id = (SELECT id FROM w)
"""


async def build(creds: dict, members: dict[int, str]) -> dict[int, str]:
    """Each member's history; their ids (the tokens' subjects)."""
    ids = {}
    conn = await db.raw_connection(creds)
    try:
        for size in members:
            member = await conn.fetchval("SELECT id FROM members WHERE email = $1", f"history{size}@example.com")
            await conn.execute(HISTORY, member, size)
            ids[size] = str(member)
        # Raw rows bypass the ledger: bring whatever the code derives from them up to date,
        # with the statement its migration backfills with (when this code has one).
        try:
            migration = importlib.import_module("domain.migrations.0012_standing")
        except ModuleNotFoundError:
            migration = None
        if migration is not None:
            await conn.execute("TRUNCATE " + ", ".join(migration.DERIVED))
            for statement in migration.BACKFILL:
                await conn.execute(statement)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return ids


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


async def measure(
    url: str, staff: str, members: dict[int, str], subjects: dict[int, str], rounds: int, per_round: int
) -> dict:
    issuer = TokenIssuer(SECRET.encode())
    tokens = {s: issuer.mint(Role.MEMBER, m, ttl=timedelta(hours=2))[0] for s, m in subjects.items()}
    me = {"query": APP["Me"][1], "operationName": "Me", "variables": {}}
    times: dict[str, dict[int, list[float]]] = {
        k: {s: [] for s in members} for k in ("Me", "RecordPurchase", "walletUpdated")
    }
    counter = 0
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        sockets = {}
        for size, token in tokens.items():
            ws = await websockets.connect(url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = APP["WalletUpdated"][1]
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            sockets[size] = ws
        await asyncio.sleep(1)

        async def purchase(size: int) -> float:
            nonlocal counter
            counter += 1
            body = {
                "query": POS["RecordPurchase"][1],
                "operationName": "RecordPurchase",
                "variables": {
                    "memberId": members[size],
                    "externalId": f"bench-{uuid.uuid4().hex}",
                    "amount": "12.50",
                    "currency": "EUR",
                    "channel": "STORE",
                    "storeId": "bench",
                },
            }
            start = time.perf_counter()
            r = await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {staff}"})
            done = time.perf_counter()
            assert not r.json()["data"]["recordPurchase"]["userErrors"], r.text
            times["RecordPurchase"][size].append(done - start)
            return done

        for _ in range(rounds):
            for size in members:
                headers = {"Authorization": f"Bearer {tokens[size]}"}
                for _ in range(per_round):
                    start = time.perf_counter()
                    r = await client.post("/graphql", json=me, headers=headers)
                    times["Me"][size].append(time.perf_counter() - start)
                    assert "errors" not in r.json(), r.text
                for _ in range(per_round):
                    committed = await purchase(size)
                    # one credit, one update: the next message on the socket is this purchase's
                    while (msg := json.loads(await asyncio.wait_for(sockets[size].recv(), 60)))["type"] != "next":
                        assert msg["type"] in ("ping", "pong"), msg
                    times["walletUpdated"][size].append(time.perf_counter() - committed)
        for ws in sockets.values():
            await ws.close()
    return times


def main() -> None:
    parser = wrk_arguments()
    parser.add_argument("--sizes", default="10,1000,100000")
    parser.add_argument("--requests", type=int, default=100, help="per member and operation")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rounds = 5
    # The demo program without its daily cap: every purchase here earns, so each has its update.
    demo = (ROOT / "domain" / "program" / "demo.toml").read_text()
    program = Path(tempfile.mkdtemp()) / "program.toml"
    program.write_text(re.sub(r"(?m)^max_points_per_day = .*$", "", demo))
    with loyalty_server(args.database_url, env={"LOYALTY_PROGRAM": str(program)}) as server:
        staff = server.token("staff", "bench")
        members = {}
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {staff}"}) as client:
            for size in sizes:
                r = client.post(
                    "/graphql",
                    json={
                        "query": "mutation($e: String!) { enrollMember(input: {email: $e}) { member { id } } }",
                        "variables": {"e": f"history{size}@example.com"},
                    },
                )
                members[size] = r.json()["data"]["enrollMember"]["member"]["id"]
        started = time.perf_counter()
        subjects = asyncio.run(build(server.creds, members))
        print(f"history built in {time.perf_counter() - started:.1f} s: {', '.join(map(str, sizes))} purchases")
        times = asyncio.run(measure(server.url, staff, members, subjects, rounds, max(1, args.requests // rounds)))
    print(f"median ms per request ({args.requests} each, sequential, {rounds} rounds taking the members in turn)")
    print(f"{'history':>10} " + " ".join(f"{k:>15}" for k in times))
    for size in sizes:
        print(f"{size:>10} " + " ".join(f"{median_ms(times[k][size]):15.2f}" for k in times))
    print(
        f"{'ratio':>10} "
        + " ".join(f"{median_ms(times[k][sizes[-1]]) / median_ms(times[k][sizes[0]]):15.2f}" for k in times)
    )


if __name__ == "__main__":
    main()
