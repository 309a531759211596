"""bench/slowloris: sockets that send half a request head and then nothing, against a
real `loyalty serve`: how many the server still holds open after --wait seconds.

    .venv/bin/python bench/slowloris.py [--database-url URL] [--sockets 1500] [--wait 30] [--source DIR]

The peer, in the same run: a normal request on a fresh connection, before and after.
--source runs the server from another tree (e.g. the commit before a change).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_server import arguments, loyalty_serve, rss_mb

HALF = b"POST /graphql HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Le"


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HALF)
        await writer.drain()
        return reader, writer
    except OSError:
        return None


async def _still_open(reader: asyncio.StreamReader) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), 0.01)
        return data != b""  # b"": the server closed it
    except TimeoutError:
        return True
    except OSError:
        return False


async def attack(port: int, sockets: int, wait: float) -> tuple[int, int]:
    opened = [s for s in await asyncio.gather(*(_open(port) for _ in range(sockets))) if s]
    await asyncio.sleep(wait)
    alive = sum(await asyncio.gather(*(_still_open(r) for r, _ in opened)))
    for _, w in opened:
        w.close()
    return len(opened), alive


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--sockets", type=int, default=1500)
    parser.add_argument("--wait", type=float, default=30)
    args = parser.parse_args()
    with loyalty_serve(args.database_url, args.source) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        started = time.perf_counter()
        ok = httpx.get(f"{url}/healthz").status_code
        peer = (time.perf_counter() - started) * 1000
        opened, alive = asyncio.run(attack(port, args.sockets, args.wait))
        rss = rss_mb(pid)
        after = httpx.get(f"{url}/healthz", timeout=30).status_code
        print(f"server from {args.source or 'this tree'}")
        print(f"peer: GET /healthz on a fresh connection: {ok} in {peer:.1f} ms before, {after} after")
        print(f"{opened} sockets sent half a header; after {args.wait:g} s {alive} were still open (RSS {rss:.0f} MB)")


if __name__ == "__main__":
    main()
