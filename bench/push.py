"""bench/push: N due notifications through our whole path (claim, policy, record,
firebase-admin) into a local fake FCM, beside raw `send_each_async` of the same
messages to the same server in the same run.

    .venv/bin/python bench/push.py [--notifications 100000] [--fake h2|python] [--database-url postgres://...]

The fake speaks FCM as Google serves it, HTTP/2 over TLS (bench/fake_fcm_h2.mjs, Node),
with a certificate made for this run; `--fake python` uses the tests' fake over HTTP/1.1.
CPU per message is printed for this process (firebase-admin and our path) and the fake,
to show which side sets the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from domain import db  # noqa: E402
from domain.program.config import parse  # noqa: E402
from notifications.dispatch import dispatch_due  # noqa: E402
from notifications.push import SEND_CHUNK, FcmSender, LogSender  # noqa: E402
from tests.fake_fcm import service_account  # noqa: E402
from tests.seed import due_notifications  # noqa: E402

# No quiet hours and no caps: this measures delivery, not policy outcomes.
PROGRAM_TEXT = (
    (ROOT / "domain" / "program" / "demo.toml")
    .read_text()
    .replace("quiet_hours = { start = 21:00:00, end = 09:00:00 }", "quiet_hours = { start = 00:00:00, end = 00:00:00 }")
    .replace("max_per_day = 2", "max_per_day = 50")
)
PROGRAM = parse(PROGRAM_TEXT, "bench")
LOYALTY = str(Path(sys.executable).with_name("loyalty"))

# The peer of the several-process pass, in a process of its own (see raw_child).
RAW_CHILD = """
import sys, uvloop
sys.path.insert(0, {root!r})
from bench.push import raw_child
uvloop.run(raw_child({credentials!r}, {endpoint!r}, {count}))  # the loop `loyalty worker` runs on
"""

FAKE = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from tests.fake_fcm import FakeFcm
fake = FakeFcm()
fake.delivered = type("Count", (list,), {{"append": lambda self, m: None}})()  # keep nothing: count nothing
uvicorn.run(fake.app, host="127.0.0.1", port={port}, log_level="warning", workers=1)
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by this process only (through
    SSL_CERT_FILE for httpx and REQUESTS_CA_BUNDLE for google-auth's token request)."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _start_fake(kind: str, port: int, folder: Path) -> tuple[subprocess.Popen, str]:
    if kind == "python":
        return subprocess.Popen([sys.executable, "-c", FAKE.format(root=str(ROOT), port=port)]), "http"
    cert, key = _certificate(folder)
    os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
    return subprocess.Popen(["node", str(ROOT / "bench" / "fake_fcm_h2.mjs"), str(port), str(cert), str(key)]), "https"


@dataclass
class Setup:
    conn: object  # asyncpg, to the run's database
    creds: dict
    folder: Path
    credentials: Path  # the service account pointing at the fake's token endpoint
    endpoint: str
    fake: subprocess.Popen


@contextlib.asynccontextmanager
async def run_setup(kind: str, database_url: str, prefix: str):
    """The fake FCM (`kind`), a migrated database of this run's own (dropped after), the
    app's pool connected to it, and a service account for the fake."""
    port = _port()
    folder = Path(tempfile.mkdtemp())
    fake, scheme = _start_fake(kind, port, folder)
    server = db.credentials_from_url(database_url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    creds = {**server, "database": name}
    try:
        endpoint = f"{scheme}://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.post(f"{endpoint}/token")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        credentials = folder / "sa.json"
        credentials.write_text(json.dumps(service_account(f"{endpoint}/token")))
        await db.migrate(creds)
        await db.connect(creds, pool_max=8)
        conn = await db.raw_connection(creds)
        try:
            yield Setup(conn, creds, folder, credentials, endpoint, fake)
        finally:
            await conn.close()
            await db.disconnect()
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notifications", type=int, default=100_000)
    parser.add_argument("--dispatchers", type=int, default=3, help="concurrent dispatchers for the no-network pass")
    parser.add_argument("--processes", type=int, default=2, help="`loyalty worker`s (and raw peers) in the last pass")
    parser.add_argument("--fake", choices=["h2", "python"], default="h2", help="HTTP/2 over TLS (Node) or HTTP/1.1")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("LOYALTY_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    n = args.notifications
    async with run_setup(args.fake, args.database_url, "loyalty_push") as run:
        conn, creds, folder, credentials, endpoint, fake = (
            run.conn,
            run.creds,
            run.folder,
            run.credentials,
            run.endpoint,
            run.fake,
        )
        await due_notifications(conn, n, "B")
        tokens = [r["fcm_token"] for r in await conn.fetch("SELECT fcm_token FROM devices")]

        # Peer: firebase-admin's send_each_async alone, no database.
        sender = FcmSender(credentials, endpoint=endpoint)
        raw_ok, (raw_seconds, raw_cpu, raw_fake_cpu), cpu = await raw_pass(sender, tokens, fake.pid)

        result = await dispatch_due(PROGRAM, sender, batch=2000)
        ours_seconds, ours_cpu, ours_fake_cpu = cpu.lap()
        sent = await conn.fetchval("SELECT count(*) FROM notifications WHERE state = 'SENT'")
        await sender.close()

        # Our path without the network: the same N again through claim, policy and
        # record, handed to the log sender. What our side alone can sustain.
        await conn.execute(
            "UPDATE notifications SET state = 'QUEUED', sent_at = NULL, due_at = now() - interval '1 minute'"
        )
        await conn.execute("UPDATE notifications SET dedupe_key = dedupe_key || '-again'")
        logging.getLogger("loyalty.push").setLevel(logging.WARNING)
        started = time.perf_counter()
        log_sender = LogSender()
        # Several dispatchers share the work (SKIP LOCKED), as several workers would.
        await asyncio.gather(*(dispatch_due(PROGRAM, log_sender, batch=1000) for _ in range(args.dispatchers)))
        alone_seconds = time.perf_counter() - started

        # Several processes: K `loyalty worker`s sharing the queue, beside K raw processes.
        spread = None
        if args.processes > 1:
            spread = await _processes(args.processes, n, conn, creds, folder, credentials, endpoint)

    ours, peer = n / ours_seconds, n / raw_seconds
    protocol = "HTTP/2 over TLS, Node" if args.fake == "h2" else "HTTP/1.1, Python"
    per = 1000 / n  # CPU ms per message
    print(f"{n} due notifications into a local fake FCM ({protocol}) through firebase-admin, FCM HTTP v1:")
    print(
        f"  ours (claim, policy, record, firebase-admin): {ours:8.0f} msg/s  ({sent} SENT, {result.failed} failed)"
        f"  CPU/msg: here {ours_cpu * per:.2f} ms, fake {ours_fake_cpu * per:.2f} ms"
    )
    print(
        f"  peer (raw send_each_async, same messages):     {peer:8.0f} msg/s  ({raw_ok} accepted)"
        f"  CPU/msg: here {raw_cpu * per:.2f} ms, fake {raw_fake_cpu * per:.2f} ms"
    )
    print(f"  ratio {ours / peer:.2f}   (aim: 0.7 or better)")
    print(
        f"  ours without the network (claim, policy, record; log sender, {args.dispatchers} dispatchers):"
        f" {n / alone_seconds:8.0f} msg/s   (FCM's default quota: 600,000/min = 10,000/s)"
    )
    if spread:
        workers, peers = spread
        print(
            f"  {args.processes} processes: ours ({args.processes} x `loyalty worker`) {n / workers:8.0f} msg/s,"
            f" peer ({args.processes} x raw) {n / peers:8.0f} msg/s, ratio {peers / workers:.2f}"
        )


async def _processes(k: int, n: int, conn, creds: dict, folder: Path, credentials: Path, endpoint: str):
    """Seconds for N pushes through K `loyalty worker` processes, then through K raw peers."""
    program = folder / "program.toml"
    program.write_text(PROGRAM_TEXT)
    env = dict(
        os.environ,
        LOYALTY_DATABASE_URL=db.Database(creds).dsn(),
        LOYALTY_JWT_SECRET="b" * 40,
        LOYALTY_PROGRAM=str(program),
        LOYALTY_PUSH_BACKEND="firebase",
        LOYALTY_FIREBASE_CREDENTIALS=str(credentials),
        LOYALTY_FCM_ENDPOINT=endpoint,
    )
    workers = [subprocess.Popen([LOYALTY, "worker"], env=env, cwd=folder, stderr=subprocess.DEVNULL) for _ in range(k)]
    try:
        await asyncio.sleep(5)  # started, with nothing due yet
        await conn.execute(
            "UPDATE notifications SET state = 'QUEUED', sent_at = NULL, due_at = now() - interval '1 minute'"
        )
        started = time.perf_counter()
        while await conn.fetchval("SELECT count(*) FROM notifications WHERE state = 'SENT'") < n:
            await asyncio.sleep(0.1)
        worker_seconds = time.perf_counter() - started
    finally:
        for w in workers:
            w.terminate()
            w.wait(timeout=30)

    peers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RAW_CHILD.format(root=str(ROOT), credentials=str(credentials), endpoint=endpoint, count=n // k),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(k)
    ]
    for p in peers:
        assert (await p.stdout.readline()).strip() == b"ready"
    started = time.perf_counter()
    for p in peers:
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    accepted = [int(await p.stdout.readline()) for p in peers]
    peer_seconds = time.perf_counter() - started
    for p in peers:
        await p.wait()
    assert sum(accepted) == k * (n // k), accepted
    return worker_seconds, peer_seconds * n / sum(accepted)  # as if n, when k does not divide it


class RawPeer:
    """firebase-admin's send_each_async and nothing else: the same chunks as FcmSender,
    under FcmSender's own concurrency gate."""

    def __init__(self, sender: FcmSender) -> None:
        self.sender = sender

    @staticmethod
    def messages(tokens) -> list:
        from firebase_admin import messaging

        note = messaging.Notification("Hello", "Come back soon")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return [messaging.Message(token=t, notification=note, data={"kind": "CAMPAIGN"}) for t in tokens]

    async def send(self, messages: list) -> int:
        """Send them all; how many FCM accepted."""
        from firebase_admin import messaging

        async def chunk(part):
            async with self.sender._gate:
                return await messaging.send_each_async(part, app=self.sender._app)

        chunks = [messages[i : i + SEND_CHUNK] for i in range(0, len(messages), SEND_CHUNK)]
        return sum(b.success_count for b in await asyncio.gather(*(chunk(c) for c in chunks)))


async def raw_pass(sender: FcmSender, tokens: list[str], fake_pid: int) -> tuple[int, tuple, Cpu]:
    """Raw send_each_async of one message per token, warmed up first: how many FCM
    accepted, the lap (wall, our CPU, the fake's CPU), and the clock to lap on from."""
    peer = RawPeer(sender)
    messages = RawPeer.messages(tokens)
    await peer.send(messages[:SEND_CHUNK])  # warm up: the OAuth token and the first connections
    cpu = Cpu(fake_pid)
    accepted = await peer.send(messages)
    return accepted, cpu.lap(), cpu


async def raw_child(credentials: str, endpoint: str, count: int) -> None:
    """One raw peer of the several-process pass: warmed up, then released with the
    others by "go" on stdin; prints how many were accepted."""
    sender = FcmSender(Path(credentials), endpoint=endpoint)
    peer = RawPeer(sender)
    messages = RawPeer.messages(f"token-raw-{i}" for i in range(count))
    await peer.send(messages[:SEND_CHUNK])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(await peer.send(messages), flush=True)
    await sender.close()


class Cpu:
    """Wall time, this process's CPU and the fake's CPU between laps."""

    def __init__(self, fake_pid: int) -> None:
        self.fake_pid = fake_pid
        self.mark = (time.perf_counter(), time.process_time(), _cpu_seconds(fake_pid))

    def lap(self) -> tuple[float, float, float]:
        now = (time.perf_counter(), time.process_time(), _cpu_seconds(self.fake_pid))
        lap = tuple(b - a for a, b in zip(self.mark, now, strict=True))
        self.mark = now
        return lap


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())  # the loop `loyalty worker` runs on
