"""What the HTTP benches share: a scratch database, a `loyalty serve` on a free port,
tokens from `loyalty token`, and wrk with a Lua `done` that prints the figures."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from domain import db

LOYALTY = str(Path(sys.executable).with_name("loyalty"))
SECRET = "bench-signing-key-" + "x" * 32

# Appended to every wrk script: one line that `wrk_run` reads back.
WRK_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors=%d p50=%.3f p99=%.3f seconds=%.3f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def sql(creds: dict, *statements: str) -> None:
    conn = await db.raw_connection(creds)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


async def fetchval(creds: dict, query: str):
    conn = await db.raw_connection(creds)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def wait_ready(url: str, path: str = "/readyz") -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url}{path} never answered 200")


@dataclass
class Server:
    url: str
    env: dict
    home: str
    creds: dict
    proc: subprocess.Popen

    def token(self, role: str, subject: str) -> str:
        return subprocess.run(
            [LOYALTY, "token", "--role", role, "--subject", subject, "--ttl", "3600"],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()


@contextmanager
def loyalty_server(database_url: str, *serve_args: str, env: dict | None = None, keep: str | None = None):
    """`loyalty serve` on a scratch database (created here, dropped on exit), or on the
    database `keep` (created if missing, kept on exit: a bench's data reused next run)."""
    server = db.credentials_from_url(database_url)
    name = keep or f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    if not keep or not asyncio.run(fetchval(server, f"SELECT 1 FROM pg_database WHERE datname = '{keep}'")):
        asyncio.run(sql(server, f'CREATE DATABASE "{name}"'))
    creds = {**server, "database": name}
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    full_env.update(LOYALTY_DATABASE_URL=db.Database(creds).dsn(), LOYALTY_JWT_SECRET=SECRET, **(env or {}))
    home = tempfile.mkdtemp()
    proc = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port), "--log-level", "warning", *serve_args], cwd=home, env=full_env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield Server(url=url, env=full_env, home=home, creds=creds, proc=proc)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        if not keep:
            asyncio.run(sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    errors: int
    p50: float  # ms
    p99: float  # ms
    seconds: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def line(self) -> str:
        return f"{self.rps:8.1f} req/s   p50 {self.p50:6.1f} ms   p99 {self.p99:6.1f} ms   errors {self.errors}"


def wrk_arguments() -> argparse.ArgumentParser:
    """The options every wrk bench takes."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    return parser


def wrk_run(url: str, lua: str, seconds: int, connections: int) -> WrkResult:
    """wrk with `lua` (plus WRK_DONE) for `seconds` at `connections`, 2 threads."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua + WRK_DONE)
        script.flush()
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if os.environ.get("BENCH_DEBUG"):
        print(out, file=sys.stderr)
    m = re.search(r"BENCH requests=(\d+) errors=(\d+) p50=([0-9.]+) p99=([0-9.]+) seconds=([0-9.]+)", out)
    return WrkResult(int(m[1]), int(m[2]), float(m[3]), float(m[4]), float(m[5]))
