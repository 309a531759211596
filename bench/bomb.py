"""bench/bomb: the validation bomb against a real `loyalty serve`, without a token.

    .venv/bin/python bench/bomb.py [--database-url URL] [--repeat 20] [--distinct 1000] [--source DIR]

1. The same 4.9 KB document, `{ me { id } me { id } … }` x490, sent --repeat times on one
   kept-alive connection: each answer's time (the first is uncached) and its error code.
2. --distinct different hostile documents (the bomb with a different field count and a
   comment): the server's RSS before, after, and the time they took.
The peer, in the same run: `{ __typename }` on the same connection.
--source runs the server from another tree (e.g. the commit before a change).
"""

from __future__ import annotations

import statistics
import sys
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


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=1000)
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


if __name__ == "__main__":
    main()
