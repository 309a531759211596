"""Cold start of `loyalty serve`: seconds from spawning the process to /readyz 200,
on an empty ./.loyalty/ (initdb + start + migrations) and on an existing one.

The peer, measured in the same run: `loyalty serve` against an already running
PostgreSQL (LOYALTY_DATABASE_URL), i.e. the cost of the process alone.

    .venv/bin/python bench/coldstart.py [--runs 3] [--database-url postgres://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LOYALTY = str(Path(sys.executable).with_name("loyalty"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_ready(cwd: Path, env: dict[str, str]) -> float:
    port = _port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"loyalty serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("LOYALTY_TEST_DATABASE_URL"))
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}

    empty, existing, external = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            empty.append(time_to_ready(Path(tmp), base))
            existing.append(time_to_ready(Path(tmp), base))
        if args.database_url:
            external.append(
                time_to_ready(Path(tempfile.gettempdir()), {**base, "LOYALTY_DATABASE_URL": args.database_url})
            )

    def show(label: str, xs: list[float]) -> None:
        if xs:
            print(f"{label:<44} median {statistics.median(xs):5.2f} s   runs {', '.join(f'{x:.2f}' for x in xs)}")

    show("embedded, empty ./.loyalty/ (initdb)", empty)
    show("embedded, existing ./.loyalty/", existing)
    show("peer: external PostgreSQL already running", external)


if __name__ == "__main__":
    main()
