"""bench/read: the app's `Me` and `WalletHistory(first: 20)` (contract/operations/member-app.graphql,
sent as written, with a member token) under wrk against `loyalty serve --no-worker`, beside a
bare Starlette + asyncpg peer (bench/peer_read.py) doing the same work, in the same run.

    .venv/bin/python bench/read.py [--database-url postgres://postgres@127.0.0.1:5432/postgres]
                                   [--seconds 20] [--connections 16] [--entries 200]
                                   [--workers 1] [--only Me] [--no-statements]
                                   [--profile me.txt] [--calls 200 [--calls-top 30]]

Besides wrk's figures it prints each side's CPU milliseconds per request (psutil, the
worker processes included), steadier than req/s on a machine shared with other work.
`--workers N` runs N processes on each side (ours: `loyalty serve --workers N`; the peer:
uvicorn with N workers). `--profile FILE` samples our server with py-spy (raw, collapsed
stacks, subprocesses included) while the first operation is timed: its figures then
carry the sampler's cost, so time and profile in separate runs. `--calls N` counts Python
calls per request under cProfile for both sides, each app driven in-process through ASGI
(bench/calls.py): a count that does not move with the machine's load. `--seconds 0` skips
wrk (with --calls: the count alone).

Needs `wrk`. It creates a scratch database (loyalty_bench_*) and drops it afterwards. The
member has a points and a cashback wallet and `--entries` purchases of history; the peer's
answers are checked byte for byte against ours before anything is timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from calls import package_of
from harness import (
    SECRET,
    WrkResult,
    fetchval,
    free_port,
    loyalty_server,
    wait_ready,
    wrk_arguments,
    wrk_run,
)

from api.documents import operations_of
from domain import db

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "contract" / "operations" / "member-app.graphql"
PROGRAM = ROOT / "domain" / "program" / "demo.toml"


def document(name: str) -> str:
    """The operation `name` and the fragments it uses, as the app sends it."""
    return operations_of([OPERATIONS])[name][1]


def lua(body: bytes, token: str) -> str:
    return (
        f"wrk.method = 'POST'\nwrk.path = '/graphql'\nwrk.body = {json.dumps(body.decode())}\n"
        f"wrk.headers['Content-Type'] = 'application/json'\nwrk.headers['Authorization'] = 'Bearer {token}'\n"
    )


COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


def statements_per_request(targets: list[tuple[str, bytes]], headers: dict, creds: dict, n: int = 100) -> list[float]:
    """Committed transactions in the database per request (each autocommit statement is
    one), from pg_stat_database. A busy backend reports at most every second and an idle
    one within 10 s, hence the wait; each reading adds one of its own, reported at once."""
    time.sleep(11)  # what came before (the seeding) reported first
    base, out = asyncio.run(fetchval(creds, COMMITS)), []
    with httpx.Client(headers=headers) as client:
        for url, body in targets:
            for _ in range(n):
                client.post(f"{url}/graphql", content=body)
            time.sleep(11)
            now = asyncio.run(fetchval(creds, COMMITS))
            out.append((now - base - 1) / n)
            base = now
    return out


@contextmanager
def sampled(pid: int, out: Path | None, seconds: int):
    """py-spy sampling `pid` (and its worker processes) into `out` while the block runs."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    # PYSPY_OPTIONS replaces the default, e.g. "--native" (which pauses the process per sample).
    options = os.environ.get("PYSPY_OPTIONS", "--nonblocking").split()
    command = [spy, "record", "--format", "raw", "--subprocesses", "-r", "200", *options]
    sampler = subprocess.Popen([*command, "-d", str(seconds), "-p", str(pid), "-o", str(out)])
    try:
        yield
    finally:
        sampler.wait(timeout=seconds + 30)


def profile_summary(path: Path, top: int = 15) -> None:
    """py-spy's raw stacks (one `frame;frame;... count` a line) summed: per package the
    share of samples with a frame of it anywhere on the stack (inclusive) and on top of
    it (own), and the frames most often on top."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    own_packages: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if "(" in f]  # "function (file:line)"; process and thread names not
        packages = {package_of(*_where(frame)) for frame in frames}
        for package in packages:
            inclusive[package] = inclusive.get(package, 0) + n
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + n
            top_package = package_of(*_where(frames[-1]))
            own_packages[top_package] = own_packages.get(top_package, 0) + n
    print(f"profile {path}: {total} samples; inclusive by package:")
    for package, n in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if package != "stdlib/other":  # the event loop and the process's root frames: all of it
            print(f"    {package:18s} {100 * n / total:5.1f} %")
    print("  on top of the stack (own time) by package:")
    for package, n in sorted(own_packages.items(), key=lambda kv: -kv[1]):
        print(f"    {package:18s} {100 * n / total:5.1f} %")
    print("  most often on top:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {100 * n / total:5.1f} %  {frame}")


def _where(frame: str) -> tuple[str, str]:
    """(file, function) of a py-spy frame "function (file:line)"; py-spy names a file
    from its package ("asyncpg/pool.py"), made absolute-looking for package_of."""
    function, _, where = frame.rpartition(" (")
    filename = where.rsplit(":", 1)[0]
    return (filename if filename.startswith("/") else "/" + filename), function


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of `pid` and its children (the --workers processes)."""
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


def timed(url: str, pid: int, script: str, seconds: int, connections: int) -> tuple[WrkResult, float]:
    """wrk's figures, and the server's CPU milliseconds per request: on a shared machine
    req/s move with the neighbours' load, CPU per request much less."""
    before = cpu_seconds(pid)
    result = wrk_run(url, script, seconds, connections)
    return result, 1000 * (cpu_seconds(pid) - before) / max(1, result.requests)


def seed(url: str, staff: str, entries: int) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {staff}"}, timeout=30) as client:
        r = client.post(
            "/graphql",
            json={
                "query": "mutation($e: String!) { enrollMember(input: {email: $e}) { member { id } } }",
                "variables": {"e": "reader@example.com"},
            },
        )
        member = r.json()["data"]["enrollMember"]["member"]["id"]
        for i in range(entries):
            r = client.post(
                "/graphql",
                json={
                    "query": "mutation($m: ID!, $x: String!, $a: Decimal!) { recordPurchase(input: {memberId: $m, "
                    'externalId: $x, amount: $a, currency: "EUR", channel: STORE, storeId: "bench"}) '
                    "{ userErrors { code } } }",
                    "variables": {"m": member, "x": f"r{i}", "a": f"{3 + i % 17}.50"},
                },
            )
            assert r.json()["data"]["recordPurchase"]["userErrors"] == [], r.text


def count_calls(env: dict, peer_args: list[str], token: str, bodies: dict, requests: int, top: int) -> None:
    """bench/calls.py in a process of its own, with our server's environment."""
    job = {
        "peer": peer_args,
        "token": token,
        "bodies": {name: body.decode() for name, body in bodies.items()},
        "requests": requests,
        "top": top,
    }
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "calls.py")],
        input=json.dumps(job).encode(),
        env={**env, "LOYALTY_SERVE_WORKER": "false"},
        check=True,
    )


def main() -> None:
    parser = wrk_arguments()
    parser.add_argument("--entries", type=int, default=200, help="purchases in the member's history")
    parser.add_argument("--workers", type=int, default=1, help="processes on each side")
    parser.add_argument("--only", choices=("Me", "WalletHistory"), help="time this operation alone")
    parser.add_argument("--no-statements", action="store_true", help="skip counting statements (~1 min)")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of ours while the first operation runs")
    parser.add_argument("--calls", type=int, default=0, help="count Python calls over this many requests (cProfile)")
    parser.add_argument("--calls-top", type=int, default=0, help="with --calls: print ours' top functions")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    # The demo program with cashback on, so that the member has two wallets.
    program_text = PROGRAM.read_text().replace(
        "[cashback]\nenabled = false\npercent = 0", "[cashback]\nenabled = true\npercent = 2"
    )
    assert "enabled = true\npercent = 2" in program_text
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / "program.toml"
        program.write_text(program_text)
        serve_args = ("--no-worker", "--workers", str(args.workers))
        with loyalty_server(args.database_url, *serve_args, env={"LOYALTY_PROGRAM": str(program)}) as server:
            seed(server.url, server.token("staff", "bench"), args.entries)
            token = server.token("member", "reader@example.com")
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            assert asyncio.run(fetchval(server.creds, "SELECT count(*) FROM wallets")) == 2, (
                "the member should have 2 wallets"
            )
            me = json.dumps({"query": document("Me"), "operationName": "Me", "variables": {}}).encode()
            ours = httpx.post(f"{server.url}/graphql", content=me, headers=headers)
            wallet = next(w["id"] for w in ours.json()["data"]["me"]["wallets"])
            history = json.dumps(
                {
                    "query": document("WalletHistory"),
                    "operationName": "WalletHistory",
                    "variables": {"walletId": wallet, "first": 20},
                }
            ).encode()
            bodies = {"Me": me, "WalletHistory": history}
            if args.only:
                bodies = {args.only: bodies[args.only]}

            port = free_port()
            peer = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "peer_read.py"),
                    str(port),
                    db.Database(server.creds).dsn(),
                    SECRET,
                    str(program),
                    str(args.workers),
                ]
            )
            try:
                peer_url = f"http://127.0.0.1:{port}"
                wait_ready(peer_url)
                for name, body in bodies.items():
                    a = httpx.post(f"{server.url}/graphql", content=body, headers=headers)
                    b = httpx.post(f"{peer_url}/graphql", content=body, headers=headers)
                    if "errors" in a.json() or a.content != b.content:
                        raise SystemExit(
                            f"{name}: the peer's answer differs from ours:\n ours {a.text}\n peer {b.text}"
                        )
                if args.calls:
                    count_calls(server.env, peer.args[2:], token, bodies, args.calls, args.calls_top)
                statements = {}
                if not args.no_statements:
                    counts = statements_per_request(
                        [(url, body) for body in bodies.values() for url in (server.url, peer_url)],
                        headers,
                        server.creds,
                    )
                    statements = dict(zip(bodies, zip(counts[::2], counts[1::2], strict=True), strict=True))
                for i, (name, body) in enumerate(bodies.items() if args.seconds else ()):
                    # Warm both (imports, caches, pool) before timing.
                    wrk_run(server.url, lua(body, token), 2, args.connections)
                    wrk_run(peer_url, lua(body, token), 2, args.connections)
                    with sampled(server.proc.pid, args.profile if i == 0 else None, args.seconds):
                        ours = timed(server.url, server.proc.pid, lua(body, token), args.seconds, args.connections)
                    bare = timed(peer_url, peer.pid, lua(body, token), args.seconds, args.connections)
                    results[name] = (ours, bare)
            finally:
                peer.terminate()
                peer.wait(timeout=30)

    print(
        f"{args.connections} connections, {args.seconds} s each (wrk), member with {args.entries} purchases, "
        f"2 wallets, {args.workers} process(es) on each side"
    )
    if args.profile and args.seconds:
        profile_summary(args.profile)
    for name, ((ours, ours_cpu), (peer, peer_cpu)) in results.items():
        print(f"{name}:")
        if name in statements:
            ours_n, bare_n = statements[name]
            print(f"  statements per request (approximate, pg_stat_database): ours {ours_n:.2f}, bare {bare_n:.2f}")
        print(f"  ours (loyalty serve --no-worker)              {ours.line()}   CPU {ours_cpu:.2f} ms/req")
        print(f"  bare Starlette + asyncpg (uvloop, httptools)  {peer.line()}   CPU {peer_cpu:.2f} ms/req")
        print(
            f"  ratio ours / bare: {ours.rps / peer.rps:.2f}   (aim: 0.5 or better); "
            f"CPU per request, bare / ours: {peer_cpu / ours_cpu:.2f}"
        )


if __name__ == "__main__":
    main()
