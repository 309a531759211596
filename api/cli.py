"""The `loyalty` command: serve, worker, jobs, migrate, token, seed, expire, schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path

from domain import db
from domain.settings import ConfigurationError, Settings

log = logging.getLogger("loyalty")


def _settings() -> Settings:
    return Settings.from_environment()


def _open_database(settings: Settings) -> db.Database:
    """The configured database, reachable, or the embedded one, started (or joined)."""
    database = db.open_database(settings.database_url, settings.home)
    if database.embedded is None:
        db.check_reachable(database.credentials)
    return database


# Bounds on stopping: open requests and sockets get this long once a stop is asked for,
# and so does the in-process worker (api/app.py); the embedded server's own `pg_ctl stop`
# comes after.
GRACEFUL_SHUTDOWN_SECONDS = 10


class _Stop:
    """SIGTERM and SIGINT, whenever they come, end `serve` through its `finally`.

    uvicorn handles both while it serves, then restores the handlers it found and raises
    the signal again: SIGTERM's default action would end the process right there, before
    any cleanup (the embedded PostgreSQL would outlive us). These handlers are the ones
    it finds and restores, so the signal becomes a KeyboardInterrupt that unwinds."""

    received: str | None = None
    stopping = False

    def __enter__(self) -> _Stop:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self.stopping:  # already cleaning up: let the embedded server's stop finish
            log.info("%s: already stopping", name)
            return
        self.received = name
        raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    from api.deadlines import uvicorn_options
    from domain.program.config import load

    started = time.monotonic()
    settings = _settings()
    program = load(settings.program)  # a bad program file stops us before anything starts
    options = dict(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        ws_max_size=64 * 1024,
        # Updates are a few hundred bytes: compressing them costs more CPU and a
        # zlib state per socket than it saves.
        ws_per_message_deflate=False,
        proxy_headers=settings.production,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **uvicorn_options(settings),  # the header deadline and the connection cap
    )
    if args.log_format == "json":
        from api.logs import json_config

        options["log_config"] = json_config()  # also applied in each --workers process
    metrics_dir = None
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A scrape reaches one process of N: they count into files that /metrics sums.
        metrics_dir = tempfile.mkdtemp(prefix="loyalty-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    with _Stop() as stop:
        database = None
        try:
            database = _open_database(settings)
            _serve(args, settings, program, database, options)
        except KeyboardInterrupt:
            pass  # a signal: uvicorn has shut down gracefully, or had not started yet
        finally:
            stop.stopping = True
            if database is not None and database.stop():
                log.info("embedded PostgreSQL stopped (%s)", settings.home.resolve() / "pgdata")
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    by = f" by {stop.received}" if stop.received else ""
    log.info("stopped%s after running %.1f s", by, time.monotonic() - started)
    return 0


def _serve(args, settings, program, database: db.Database, options: dict) -> None:
    import uvicorn

    from api.app import create_app

    if args.no_worker:
        os.environ["LOYALTY_SERVE_WORKER"] = "false"
    if args.workers > 1:
        # Worker processes build the app from the environment: point them at the
        # database this process resolved (the embedded one included). uvicorn's
        # supervisor stops them on SIGTERM/SIGINT and returns here.
        os.environ["LOYALTY_DATABASE_URL"] = database.dsn()
        uvicorn.run("api.app:app_from_environment", factory=True, workers=args.workers, **options)
    else:
        app = create_app(settings, program=program, database=database, worker=not args.no_worker)
        uvicorn.Server(uvicorn.Config(app, **options)).run()


def migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    database = _open_database(settings)
    try:
        asyncio.run(db.migrate(database.credentials))
    finally:
        database.stop()
    print("migrations applied", file=sys.stderr)
    return 0


async def _member_subject(subject: str) -> str:
    """A member's UUID from their email or their global ID, checked in the database."""
    from api.relay import uuid_of
    from domain.errors import InvalidInput
    from domain.members import service as members

    if "@" in subject:
        member = await members.by_email(subject)
    else:
        try:
            member = await members.find(uuid_of(subject, "Member"))
        except InvalidInput:
            try:
                member = await members.find(uuid.UUID(subject))
            except ValueError:
                member = None
    if member is None:
        raise LookupError(f"no member with id or email {subject!r}")
    return str(member.id)


def _with_database(settings: Settings, work, *, pool_max: int = 2, migrate: bool = True):
    """Run `work(database)` with the ORM connected to the configured (or embedded)
    database, migrated first; everything is closed afterwards, the embedded server too."""
    database = _open_database(settings)

    async def run():
        if migrate:
            await db.migrate(database.credentials)
        await db.connect(database.credentials, pool_max=pool_max)
        try:
            return await work(database)
        finally:
            await db.disconnect()

    try:
        return _run_loop(run())
    finally:
        database.stop()


def _run_loop(coro):
    """asyncio.run, on uvloop where installed (uvicorn[standard] brings it, and `serve`
    runs on it): the worker's pushes cost ~10% less CPU on it (measured, bench/push)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def token(args: argparse.Namespace) -> int:
    from domain.identity.tokens import Role, TokenIssuer

    settings = _settings()
    role = Role(args.role)
    subject = args.subject.strip()
    if not subject or len(subject) > 200:
        print("error: --subject must be 1 to 200 characters", file=sys.stderr)
        return 2
    if role is Role.MEMBER:
        try:
            subject = _with_database(settings, lambda _db: _member_subject(subject), pool_max=1, migrate=False)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    issuer = TokenIssuer(settings.signing_key())
    value, _ = issuer.mint(role, subject, ttl=timedelta(seconds=args.ttl))
    print(value)
    return 0


def seed(args: argparse.Namespace) -> int:
    from api.demo import seed_demo

    if not args.demo:
        print("error: say what to seed: --demo loads the demo members", file=sys.stderr)
        return 2
    settings = _settings()
    _with_database(settings, lambda _db: seed_demo(settings))
    return 0


def worker(args: argparse.Namespace) -> int:
    """The background worker alone: periodic jobs and push delivery."""
    from domain.program.config import load
    from notifications import worker as jobs

    settings = _settings()
    program = load(settings.program)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        # A port of its own (this process serves no HTTP), on a thread: bind it where only the scraper reaches.
        start_http_server(args.metrics_port, addr=args.metrics_host)

    async def work(database: db.Database) -> int:
        task = asyncio.create_task(jobs.run(settings, program, database.dsn()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        log.info("worker running")
        try:
            await task
        except asyncio.CancelledError:
            log.info("worker stopped")
            return 0
        except Exception as exc:  # it died on its own: say why, and exit non-zero
            log.error("worker died: %s", exc, exc_info=exc)
            return 1
        return 0

    return _with_database(settings, work, pool_max=8)


def jobs_list(args: argparse.Namespace) -> int:
    from notifications.worker import PERIODIC

    for job in PERIODIC.values():
        print(f"{job.name:<16} {job.when:<20} cron {job.cron}")
    return 0


def jobs_run(args: argparse.Namespace) -> int:
    """One periodic job, now, under the same lock as the scheduled runs."""
    from domain.program.config import load
    from notifications.worker import PERIODIC, run_job

    settings = _settings()
    program = load(settings.program)
    job = PERIODIC[args.name]
    print(f"{job.name}: {_with_database(settings, lambda database: run_job(job, program, database.dsn()))}")
    return 0


def expire(args: argparse.Namespace) -> int:
    """The daily pass, now: release pending points and expire past-due lots."""
    from domain.program.config import load
    from domain.tiers import service as tiers

    settings = _settings()
    program = load(settings.program)
    result = _with_database(settings, lambda _db: tiers.run_expiry(program))
    print(
        f"released pending points of {result.released_members} members; expired {result.expired}"
        f" in {result.batches} batches, longest batch {result.longest_batch} s"
        + (f", {result.cancelled} cancelled at the lock bound and retried smaller" if result.cancelled else "")
    )
    return 0


def schema(args: argparse.Namespace) -> int:
    from api.schema import sdl

    sys.stdout.write(sdl())
    return 0


def _log_format(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one JSON object per line (time, level, logger, message, request_id)",
    )


def documents(args: argparse.Namespace) -> int:
    from api.documents import ManifestError, manifest_of

    try:
        manifest = manifest_of(Path(p) for p in args.paths)
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{len(manifest)} documents written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    from notifications.worker import PERIODIC

    p = argparse.ArgumentParser(
        prog="loyalty",
        description="The loyalty platform's API and tools. Configured by LOYALTY_* environment variables (README).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the API (embedded PostgreSQL unless LOYALTY_DATABASE_URL)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    s.add_argument("--port", type=int, default=8000, help="TCP port to listen on (default 8000)")
    s.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="least severe log messages shown (default info)",
    )
    s.add_argument("--workers", type=int, default=1, help="API processes sharing the port (default 1)")
    s.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the background worker (periodic jobs, push delivery) in the API process",
    )
    _log_format(s)
    s.set_defaults(func=serve)

    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=migrate)

    t = sub.add_parser("token", help="print an access token")
    t.add_argument("--role", required=True, choices=["member", "staff", "marketer"], help="whom the token is for")
    t.add_argument("--subject", required=True, help="member: id or email; staff/marketer: a name")
    t.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    t.set_defaults(func=token)

    d = sub.add_parser("seed", help="load demo data")
    d.add_argument("--demo", action="store_true", help="demo members, and tokens to try them with")
    d.set_defaults(func=seed)

    w = sub.add_parser("worker", help="run the background worker alone (periodic jobs, push delivery)")
    _log_format(w)
    w.add_argument("--metrics-port", type=int, help="serve this worker's Prometheus metrics on this port")
    w.add_argument("--metrics-host", default="127.0.0.1", help="the address for --metrics-port (default 127.0.0.1)")
    w.set_defaults(func=worker)

    j = sub.add_parser("jobs", help="list the periodic jobs, or run one now")
    jobs = j.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jobs.add_parser("list", help="each periodic job and when the worker runs it").set_defaults(func=jobs_list)
    r = jobs.add_parser("run", help="run a periodic job now (safe beside the worker's own runs)")
    r.add_argument("name", choices=list(PERIODIC), help="the job: " + ", ".join(PERIODIC))
    r.set_defaults(func=jobs_run)

    e = sub.add_parser("expire", help="release pending points and expire past-due points now")
    e.set_defaults(func=expire)

    g = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    g.set_defaults(func=schema)

    o = sub.add_parser("documents", help="write a trusted-documents manifest from .graphql files")
    o.add_argument("paths", nargs="+", metavar="PATH", help=".graphql files: each operation with its fragments")
    o.add_argument("--out", metavar="FILE", help="write the manifest here (default: standard output)")
    o.set_defaults(func=documents)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "log_format", "text") == "json":
        from api.logs import use_json

        use_json()
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # "Tortoise-ORM shutdown" after every command
    warnings.filterwarnings("ignore", module="platformdirs")
    if getattr(args, "ttl", 3600) < 1 or getattr(args, "ttl", 0) > 366 * 86400:
        print("error: --ttl must be between 1 second and a year", file=sys.stderr)
        sys.exit(2)
    if getattr(args, "workers", 1) < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        sys.exit(2)
    from domain.program.config import ProgramError

    try:
        sys.exit(args.func(args))
    except (ConfigurationError, ProgramError) as exc:
        # One line per mistake, naming the variable (or the program file's key): no traceback.
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
