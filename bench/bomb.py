"""bench/bomb: the validation bomb against a real `loyalty serve`, without a token.

    .venv/bin/python bench/bomb.py [--database-url URL] [--repeat 20] [--distinct 1000] [--source DIR]

1. The same 4.9 KB document, `{ me { id } me { id } … }` x490, sent --repeat times on one
   kept-alive connection: each answer's time (the first is uncached) and its error code.
2. --distinct different hostile documents (the bomb with a different field count and a
   comment): the server's RSS before, after, and the time they took.
3. --clients clients sending distinct hostile documents for --seconds, while another
   asks GET /healthz every 50 ms: its latency, beside the same probe at rest.
The peer, in the same run: `{ __typename }` on the same connection.
--source runs the server from another tree (e.g. the commit before a change).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_server import arguments, loyalty_serve, rss_mb

BOMB = "{ " + "me { id } " * 490 + "}"


def hostile(n: int) -> str:
    return "{ " + "me { id } " * (400 + n % 90) + f"}} # {n}"


def timed(client: httpx.Client, query: str) -> tuple[float, str]:
    started = time.perf_counter()
    body = client.post("/graphql", json={"query": query}).json()
    elapsed = (time.perf_counter() - started) * 1000
    errors = body.get("errors") or [{}]
    return elapsed, (errors[0].get("extensions") or {}).get("code") or errors[0].get("message", "ok")[:40]


def health_under_attack(url: str, clients: int, seconds: float) -> tuple[list[float], int]:
    """/healthz latencies (ms) while `clients` threads send distinct hostile documents."""
    stop = time.monotonic() + seconds
    sent = [0] * clients

    def attacker(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            n = 100_000 * (i + 1)
            while time.monotonic() < stop:
                timed(c, hostile(n + sent[i]))
                sent[i] += 1

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    probes = []
    with httpx.Client(base_url=url, timeout=120) as c:
        while time.monotonic() < stop:
            started = time.perf_counter()
            c.get("/healthz")
            probes.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
    for t in threads:
        t.join()
    return probes, sum(sent)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(f"document: {len(BOMB)} bytes; server from {args.source or 'this tree'}")
    with loyalty_serve(args.database_url, args.source) as (url, pid), httpx.Client(base_url=url, timeout=120) as c:
        peer = [timed(c, "{ __typename }")[0] for _ in range(args.repeat)]
        times, codes = zip(*(timed(c, BOMB) for _ in range(args.repeat)), strict=True)
        print(f"peer {{ __typename }}: p50 {statistics.median(peer):7.1f} ms   max {max(peer):7.1f} ms")
        print(
            f"bomb x{args.repeat}: first {times[0]:7.1f} ms   p50 {statistics.median(times):7.1f} ms   "
            f"max {max(times):7.1f} ms   answer {sorted(set(codes))}"
        )
        before = rss_mb(pid)
        started = time.perf_counter()
        slowest = 0.0
        for n in range(args.distinct):
            slowest = max(slowest, timed(c, hostile(n))[0])
        took = time.perf_counter() - started
        after = rss_mb(pid)
        print(
            f"{args.distinct} distinct hostile documents: {took:6.1f} s (slowest {slowest:6.1f} ms); "
            f"RSS {before:6.1f} -> {after:6.1f} MB ({after - before:+.1f} MB)"
        )
        rest, _ = health_under_attack(url, 0, 2)
        probes, sent = health_under_attack(url, args.clients, args.seconds)
        print(
            f"GET /healthz at rest: p50 {statistics.median(rest):6.1f} ms; while {args.clients} clients sent "
            f"{sent} distinct hostile documents in {args.seconds:g} s: p50 {statistics.median(probes):6.1f} ms, "
            f"max {max(probes):6.1f} ms"
        )


if __name__ == "__main__":
    main()
