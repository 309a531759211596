"""Python calls per request under cProfile, for bench/read: our app and the bare peer
(bench/peer_read.py), each driven in this process through ASGI (no socket, no HTTP
parser: the server in front is the same uvicorn for both), on the event loop the
servers use (uvloop). Steadier than req/s on a shared machine: the count does not move
with the neighbours' load.

    python bench/calls.py < job.json    (bench/read.py --calls N writes the job)

The job: {"peer": [argv of peer_read.py], "token": ..., "bodies": {name: body},
"requests": N}; our app is built from the LOYALTY_* environment, as a `loyalty serve
--workers N` process builds it. Prints, per operation and side, the calls per request
and where they go: own time and calls by package (cProfile's tottime and ncalls).
"""

from __future__ import annotations

import asyncio
import cProfile
import importlib
import json
import os
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PACKAGES = (
    "strawberry",
    "graphql",
    "starlette",
    "tortoise",
    "pypika",
    "asyncpg",
    "uvicorn",
    "uvloop",
    "prometheus_client",
    "jwt",
)
OURS = ("/api/", "/domain/", "/notifications/", "/bench/")


def package_of(filename: str, function: str) -> str:
    for name in PACKAGES:
        if f"/{name}/" in filename or f"/{name}_" in filename:
            return name
    if "site-packages" not in filename and any(part in filename for part in OURS):
        return "ours"
    if filename == "~":  # a C function: <built-in method ...>
        return "builtins"
    return "stdlib/other"


def request_scope(body: bytes, token: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app, body: bytes, token: str) -> bytes:
    sent = False
    out: list[bytes] = []

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app works
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(request_scope(body, token), receive, send)
    return b"".join(out)


async def lifespan(app):
    """Runs the app's lifespan startup; returns a coroutine function that shuts it down."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def measure(
    side: str, app, bodies: dict[str, bytes], token: str, requests: int
) -> dict[str, tuple[bytes, pstats.Stats]]:
    stop = await lifespan(app)
    results = {}
    try:
        for name, body in bodies.items():
            for _ in range(50):  # warm: caches, pool, imports
                answer = await call(app, body, token)
            # CPU time: the database's work happens in another process and is not ours.
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            for _ in range(requests):
                await call(app, body, token)
            profile.disable()
            if dump := os.environ.get("BENCH_CALLS_DUMP"):  # pstats files to read further
                profile.dump_stats(f"{dump}-{side}-{name}.prof")
            results[name] = (answer, pstats.Stats(profile))
    finally:
        await stop()
    return results


def summary(stats: pstats.Stats, requests: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """Calls per request, and per package: (own seconds per request, calls per request)."""
    by_package: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (filename, _line, function), (_cc, ncalls, tottime, _ct, _callers) in stats.stats.items():
        entry = by_package[package_of(filename, function)]
        entry[0] += tottime
        entry[1] += ncalls
    return stats.total_calls / requests, {k: (v[0] / requests, v[1] / requests) for k, v in by_package.items()}


def report(side: str, name: str, stats: pstats.Stats, requests: int, top: int) -> None:
    calls, packages = summary(stats, requests)
    own = sum(seconds for seconds, _ in packages.values())
    print(f"{name} {side}: {calls:,.0f} calls per request, {1000 * own:.2f} CPU ms under cProfile")
    for package, (seconds, n) in sorted(packages.items(), key=lambda kv: -kv[1][0]):
        print(f"    {package:14s} {100 * seconds / own:5.1f} % own time   {n:7,.0f} calls")
    if top:
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("ncalls").print_stats(top)


def main() -> None:
    job = json.load(sys.stdin)
    bodies = {name: body.encode() for name, body in job["bodies"].items()}
    requests, token, top = job["requests"], job["token"], job.get("top", 0)

    from api.app import app_from_environment

    ours = uvloop.run(measure("ours", app_from_environment(), bodies, token, requests))
    sys.argv = ["peer_read.py", *job["peer"]]
    peer_app = importlib.import_module("peer_read").app
    bare = uvloop.run(measure("bare", peer_app, bodies, token, requests))
    for name in bodies:
        if ours[name][0] != bare[name][0]:
            raise SystemExit(f"{name}: the answers differ\n ours {ours[name][0]!r}\n peer {bare[name][0]!r}")
        report("ours", name, ours[name][1], requests, top)
        report("bare", name, bare[name][1], requests, 0)
        ratio = ours[name][1].total_calls / bare[name][1].total_calls
        print(f"  {name}: calls per request, ours / bare: {ratio:.1f}")


if __name__ == "__main__":
    main()
