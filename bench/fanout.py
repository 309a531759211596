"""bench/fanout: how many subscribed apps one API process holds, and how fast a
committed purchase reaches each, beside a bare Starlette WebSocket broadcast.

    .venv/bin/python bench/fanout.py [--subscribers 2000] [--database-url postgres://...]

Ours: N members each subscribed to walletUpdated (graphql-transport-ws) on one
`loyalty serve` process; then one purchase per member, committed from this process
(the domain use case on its own connection, as another API process would), and the
time from the commit being acknowledged to the update arriving. Memory: the server's
resident set with N idle subscriptions minus before, per subscription.
Peer: the same N sockets on a bare Starlette WebSocket route; one broadcast to all;
the time from sending to arrival; resident memory per idle socket.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from domain import db
from domain.identity.tokens import Role, TokenIssuer

LOYALTY = str(Path(sys.executable).with_name("loyalty"))
SECRET = "fanout-bench-key-" + "y" * 32
# Like the apps' clients (graphql-ws in a browser or React Native cannot send ping
# frames): no client pings. The server's own keepalive pings, answered, still run.
CLIENT = {"open_timeout": 60, "ping_interval": None}
QUERY = "subscription { walletUpdated { wallet { balance } entry { id amount } } }"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def profiler(pid: int, name: str | None):
    """py-spy on the server while it delivers (FANOUT_PROFILE=dir), raw folded stacks."""
    if not name:
        return None
    out = Path(name) / f"{pid}.txt"
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "-o",
            str(out),
            "--rate",
            "50",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(spy) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} never became ready")


async def wait_fed(url: str, n: int) -> float:
    """Until the server feeds every subscription live (its metric), so that the commits
    measure delivery, not subscriptions still starting; how long that took."""
    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        while time.perf_counter() - started < 120:
            text = (await client.get(url)).text
            fed = [ln for ln in text.splitlines() if ln.startswith("loyalty_live_subscriptions_fed ")]
            if fed and float(fed[0].split()[1]) >= n:
                break
            await asyncio.sleep(0.2)
    return time.perf_counter() - started


async def open_many(n: int, connect) -> list:
    gate = asyncio.Semaphore(64)

    async def one(i: int):
        async with gate:
            return await connect(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def ours(args, server_creds: dict) -> dict:
    from domain.members import service as members
    from domain.program.config import load

    name = args.keep or f"loyalty_fanout_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server_creds)
    if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        await admin.execute(f'CREATE DATABASE "{name}"')
    creds = {**server_creds, "database": name}
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(
        LOYALTY_DATABASE_URL=db.Database(creds).dsn(),
        LOYALTY_JWT_SECRET=SECRET,
        # the sockets, and room for the bench's own requests (/metrics) beside them
        LOYALTY_MAX_CONNECTIONS=str(args.subscribers + 64),
    )
    proc = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port), "--log-level", "warning"], cwd=tempfile.gettempdir(), env=env
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        await db.connect(creds, pool_max=8)
        program = load(None)
        gate = asyncio.Semaphore(8)

        async def enrol(i: int):
            async with gate:
                return (await members.enroll(program, members.Profile(email=f"fan{i}@example.com"))).id

        async def enrolled(i: int):
            # --keep: the members of an earlier run are enrolled already (enrolling 10,000 takes minutes)
            found = await members.by_email(f"fan{i}@example.com") if args.keep else None
            return found.id if found is not None else await enrol(i)

        ids = await asyncio.gather(*(enrolled(i) for i in range(args.subscribers)))
        issuer = TokenIssuer(SECRET.encode())
        await asyncio.sleep(1)
        base = rss(proc.pid)
        arrived: dict[uuid.UUID, float] = {}
        done = asyncio.Event()

        async def connect(i: int):
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"], **CLIENT
            )
            token = issuer.mint(Role.MEMBER, str(ids[i]), ttl=timedelta(hours=1))[0]
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            await ws.recv()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUERY}}))
            return ws

        sockets = await open_many(args.subscribers, connect)

        async def reader(i: int, ws) -> None:
            async for raw in ws:
                if json.loads(raw).get("type") == "next":
                    arrived[ids[i]] = time.time()
                    if len(arrived) == len(ids):
                        done.set()
                    return

        readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        settled = await wait_fed(f"http://127.0.0.1:{port}/metrics", args.subscribers)
        await asyncio.sleep(3)  # let every subscription settle, then measure idle memory
        idle = rss(proc.pid)

        # The purchases are committed by another process (as another API process would),
        # so this one only reads its sockets, like the peer's clients do.
        spy = profiler(proc.pid, os.environ.get("FANOUT_PROFILE"))
        server_cpu, client_cpu = cpu(proc.pid), time.process_time()
        ids_file = Path(tempfile.mkdtemp()) / "members.txt"
        ids_file.write_text("\n".join(str(m) for m in ids))
        committer = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--commit",
            db.Database(creds).dsn(),
            str(ids_file),
            str(args.rate),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await committer.communicate()
        committed = {}
        for line in out.decode().splitlines():
            member, at = line.split()
            committed[uuid.UUID(member)] = float(at)
        commit_seconds = max(committed.values()) - min(committed.values())
        try:
            await asyncio.wait_for(done.wait(), 60)
        except TimeoutError:
            pass
        server_cpu, client_cpu = cpu(proc.pid) - server_cpu, time.process_time() - client_cpu
        stop_profiler(spy)
        latencies = [max(0.0, arrived[m] - committed[m]) * 1000 for m in ids if m in arrived]
        if os.environ.get("FANOUT_DEBUG"):
            order = sorted(committed, key=committed.get)
            worst = sorted(((arrived[m] - committed[m]) * 1000, order.index(m)) for m in ids if m in arrived)[-25:]
            print("worst (ms, commit index):", [(round(a), i) for a, i in worst])
        for t in readers:
            t.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await db.disconnect()
        return {
            "received": len(latencies),
            "p50": statistics.median(latencies),
            "p99": pct(latencies, 99),
            "per_socket_kib": (idle - base) / args.subscribers / 1024,
            "commit_seconds": commit_seconds,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
            "settled": settled,
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def peer(args) -> dict:
    port = _port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("peer_ws.py")), str(port)])
    try:
        await wait_ready(f"http://127.0.0.1:{port}/count")
        await asyncio.sleep(0.5)
        base = rss(proc.pid)

        async def connect(_i: int):
            return await websockets.connect(f"ws://127.0.0.1:{port}/ws", **CLIENT)

        sockets = await open_many(args.subscribers, connect)
        await asyncio.sleep(3)
        idle = rss(proc.pid)
        arrived: list[float] = []

        async def reader(ws) -> None:
            raw = await ws.recv()
            arrived.append((time.time() - json.loads(raw)["sent"]) * 1000)

        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        server_cpu, client_cpu = cpu(proc.pid), time.process_time()
        async with httpx.AsyncClient() as client:
            await client.post(f"http://127.0.0.1:{port}/broadcast", timeout=60)
        await asyncio.wait(readers, timeout=60)
        server_cpu, client_cpu = cpu(proc.pid) - server_cpu, time.process_time() - client_cpu
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        return {
            "received": len(arrived),
            "p50": statistics.median(arrived),
            "p99": pct(arrived, 99),
            "per_socket_kib": (idle - base) / args.subscribers / 1024,
            "server_cpu": server_cpu,
            "client_cpu": client_cpu,
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


async def commit(dsn: str, ids_file: str, rate: float) -> None:
    """The committer: one purchase per member (at `rate` a second, or as fast as it can
    with 8 at a time when 0), printing when each commit was acknowledged."""
    from domain.program.config import load
    from domain.purchases import service as purchases

    await db.connect(db.credentials_from_url(dsn), pool_max=8)
    program = load(None)
    gate = asyncio.Semaphore(8)
    lines = []

    async def buy(member_id: str) -> None:
        async with gate:
            await purchases.record(
                program,
                member_id=uuid.UUID(member_id),
                external_id=f"fan-{member_id}-{run}",
                amount=Decimal("3.00"),
                currency="EUR",
                channel="APP",
            )
            lines.append(f"{member_id} {time.time()}")

    members = Path(ids_file).read_text().split()
    run = uuid.uuid4().hex[:8]  # purchases are idempotent by external id: each run buys anew
    if rate > 0:
        tasks = []
        start = time.perf_counter()
        for i, member in enumerate(members):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(buy(member)))
        await asyncio.gather(*tasks)
    else:
        await asyncio.gather(*(buy(m) for m in members))
    await db.disconnect()
    print("\n".join(lines))


async def main() -> None:
    # The measuring client holds thousands of sockets: keep its own garbage-collector
    # pauses out of the figures (for ours and the peer alike).
    gc.disable()
    if sys.argv[1:2] == ["--commit"]:
        await commit(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument(
        "--keep", metavar="DATABASE", help="use (and keep) this database: its members are enrolled once, reused later"
    )
    parser.add_argument("--rate", type=float, default=0, help="purchases per second; 0: as fast as they commit")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    server = db.credentials_from_url(args.database_url)
    a = await ours(args, server)
    b = await peer(args)
    n = args.subscribers
    pace = f"{args.rate:.0f}/s" if args.rate else "as fast as they commit"
    print(f"{n} subscribers on one API process, one purchase each, {pace} ({a['commit_seconds']:.1f} s in all):")
    print(
        f"  ours: received {a['received']}/{n}   commit->receipt p50 {a['p50']:6.1f} ms   p99 {a['p99']:6.1f} ms"
        f"   {a['per_socket_kib']:5.1f} KiB per idle subscription"
        f"   (all live {a['settled']:.1f} s after the last socket opened)"
    )
    print(
        f"  peer (bare Starlette WebSocket, one broadcast to all): received {b['received']}/{n}"
        f"   p50 {b['p50']:6.1f} ms   p99 {b['p99']:6.1f} ms   {b['per_socket_kib']:5.1f} KiB per idle socket"
    )
    print(
        f"  ratio ours/peer: p50 {a['p50'] / b['p50']:.2f}x   p99 {a['p99'] / b['p99']:.2f}x"
        f"   memory {a['per_socket_kib'] / b['per_socket_kib']:.2f}x"
    )
    print(
        f"  CPU while delivering: ours server {a['server_cpu']:.1f} s, bench client {a['client_cpu']:.1f} s"
        f" (commits from another process, {a['commit_seconds']:.1f} s);"
        f" peer server {b['server_cpu']:.1f} s, bench client {b['client_cpu']:.1f} s"
    )
    print("  aim: p99 under 250 ms at 2,000 subscribers, under 64 KiB per idle subscription; p99 within 2x of the peer")


if __name__ == "__main__":
    asyncio.run(main())
