"""Stopping `loyalty serve` on its embedded PostgreSQL: SIGTERM (what Docker, systemd and
every process manager send) and SIGINT, sent to the process alone, stop the API, the
in-process worker and the database it started, within a bounded time; a database left
running by a crashed process is adopted and stopped with the next one."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import websockets

from notifications.worker import PERIODIC
from tests.conftest import Socket
from tests.processes import ENROLL, LOYALTY, free_port, loyalty_env, post, run_loyalty, wait_ready

# uvicorn's graceful shutdown (10 s at most), the worker's (10 s) and `pg_ctl stop`.
STOP_WITHIN_SECONDS = 30


def _postgres_on(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def _start(cwd: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port), *extra],
        cwd=cwd,
        env=loyalty_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_ready(proc, port)
    return proc, port


def _signal_and_time(proc: subprocess.Popen, sig: signal.Signals) -> tuple[int, float, str]:
    """Send `sig` to the process alone (not its group, as a terminal's Ctrl-C would) and
    time its exit."""
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=STOP_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"{sig.name}: still running after {STOP_WITHIN_SECONDS} s") from None
    return proc.returncode, time.monotonic() - started, err


@pytest.fixture
def home():
    """A working directory for `serve`; whatever postgres a failed test leaves is killed.
    Not under pytest's tmp_path: pgserver runs postgres as another user when we are root,
    and a concurrent pytest run resets pytest's temporary root to 0700 under it."""
    path = Path(tempfile.mkdtemp(prefix="loyalty-lifecycle-"))
    yield path
    for proc in _postgres_on(path / ".loyalty" / "pgdata"):
        proc.kill()
    shutil.rmtree(path, ignore_errors=True)


async def _subscribed(port: int, cwd: Path) -> Socket:
    """A member's live subscription, open on the server (as the app keeps one)."""
    staff = run_loyalty(["token", "--role", "staff", "--subject", "till-1"], cwd, loyalty_env()).stdout.strip()
    post(port, ENROLL, staff, {"e": "ana@example.com"})
    member = run_loyalty(
        ["token", "--role", "member", "--subject", "ana@example.com"], cwd, loyalty_env()
    ).stdout.strip()
    sock = await Socket.open(f"127.0.0.1:{port}", member)
    await sock.subscribe("subscription { walletUpdated { wallet { balance } } }")
    return sock


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_serve_and_its_embedded_database(home: Path, sig: signal.Signals):
    pgdata = home / ".loyalty" / "pgdata"
    proc, port = _start(home)
    assert _postgres_on(pgdata), "the embedded PostgreSQL should be running"

    async def signal_with_a_subscriber_connected():
        sock = await _subscribed(port, home)
        stopped = await asyncio.to_thread(_signal_and_time, proc, sig)
        with pytest.raises(websockets.ConnectionClosed):  # the server closed it on its way out
            await sock.receive(timeout=5)
        return stopped

    code, elapsed, err = asyncio.run(signal_with_a_subscriber_connected())

    print(f"{sig.name} to exit, embedded database and one live subscriber included: {elapsed:.2f} s")
    assert code == 0, err
    assert _postgres_on(pgdata) == [], f"postgres still running after {sig.name}"
    assert not (pgdata / "postmaster.pid").exists()
    assert f"stopped by {sig.name}" in err
    assert "embedded PostgreSQL stopped" in err
    assert err.count("Registering task") == len(PERIODIC), "each periodic job is registered once"


def test_a_database_left_by_a_crash_is_adopted_and_stopped(home: Path):
    pgdata = home / ".loyalty" / "pgdata"
    crashed, _ = _start(home)
    crashed.kill()  # no cleanup at all
    crashed.communicate()
    leftover = _postgres_on(pgdata)
    assert leftover, "a killed serve leaves its embedded PostgreSQL running"

    proc, _ = _start(home)
    code, _, err = _signal_and_time(proc, signal.SIGTERM)

    assert code == 0, err
    assert f"was left running by a process that is gone ({crashed.pid}); adopting it" in err
    assert _postgres_on(pgdata) == []


def test_a_crash_recorded_in_the_embedded_database_does_not_keep_the_next_one_running(home: Path):
    """The crashed process is still listed as a user of the embedded server after that
    server itself went away (a reboot): the next serve must still stop the one it starts."""
    pgdata = home / ".loyalty" / "pgdata"
    crashed, _ = _start(home)
    crashed.kill()
    crashed.communicate()
    for postmaster in _postgres_on(pgdata):
        postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown, as at a reboot
    psutil.wait_procs(_postgres_on(pgdata), timeout=20)
    assert _postgres_on(pgdata) == []

    proc, _ = _start(home)
    code, _, err = _signal_and_time(proc, signal.SIGTERM)

    assert code == 0, err
    assert "adopting" not in err  # nothing was left running to adopt
    assert _postgres_on(pgdata) == []


def test_serve_with_several_processes_stops_them_all(home: Path):
    pgdata = home / ".loyalty" / "pgdata"
    proc, _ = _start(home, "--workers", "2")
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len([c for c in children if "postgres" not in c.name()]) >= 2

    code, elapsed, err = _signal_and_time(proc, signal.SIGTERM)

    print(f"SIGTERM to exit with 2 API processes: {elapsed:.2f} s")
    assert code == 0, err
    assert _postgres_on(pgdata) == []
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
