"""A `loyalty serve` for the edge benchmarks (bench/bomb.py, bench/slowloris.py), on a
scratch database, optionally from another source tree (to measure the code before a change:
`git archive <commit> | tar -x -C /tmp/before`, then `--source /tmp/before`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from domain import db

SECRET = "bench-signing-key-" + "x" * 32
SERVE = "import sys; from api.cli import main; sys.argv[0] = 'loyalty'; sys.exit(main())"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _sql(creds: dict, statement: str) -> None:
    conn = await db.raw_connection(creds)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def arguments(description: str | None) -> argparse.ArgumentParser:
    """The options every edge benchmark takes: the database, and the tree to serve from."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--source", type=Path, default=None, help="serve from this tree (e.g. an older commit)")
    return parser


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def loyalty_serve(database_url: str, source: Path | None = None, **env_extra: str) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of a `loyalty serve --no-worker` on a scratch database."""
    server = db.credentials_from_url(database_url)
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_sql(server, f'CREATE DATABASE "{name}"'))
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(LOYALTY_DATABASE_URL=db.Database({**server, "database": name}).dsn(), LOYALTY_JWT_SECRET=SECRET)
    env.update(env_extra)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    home = tempfile.mkdtemp()
    cmd = [sys.executable, "-c", SERVE, "serve", "--port", str(port), "--log-level", "warning", "--no-worker"]
    proc = subprocess.Popen(cmd, cwd=home, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise SystemExit("loyalty serve exited")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        asyncio.run(_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(home, ignore_errors=True)
