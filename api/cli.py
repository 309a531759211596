"""The `loyalty` command: serve, migrate, token, seed, schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import warnings
from datetime import timedelta

from domain import db
from domain.settings import ConfigurationError, Settings

log = logging.getLogger("loyalty")


def _settings() -> Settings:
    settings = Settings()
    settings.check()
    return settings


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.deadlines import uvicorn_options
    from domain.program.config import load

    started = time.monotonic()
    settings = _settings()
    program = load(settings.program)  # a bad program file stops us before anything starts
    database = db.open_database(settings.database_url, settings.home)
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
        **uvicorn_options(settings),  # the header deadline and the connection cap
    )
    try:
        if args.no_worker:
            os.environ["LOYALTY_SERVE_WORKER"] = "false"
        if args.workers > 1:
            # Worker processes build the app from the environment: point them at the
            # database this process resolved (the embedded one included).
            os.environ["LOYALTY_DATABASE_URL"] = database.dsn()
            uvicorn.run("api.app:app_from_environment", factory=True, workers=args.workers, **options)
        else:
            app = create_app(settings, program=program, database=database, worker=not args.no_worker)
            server = uvicorn.Server(uvicorn.Config(app, **options))
            try:
                server.run()
            except KeyboardInterrupt:
                pass  # uvicorn re-raises Ctrl-C once it has shut down gracefully
        log.info("stopped after %.1f s", time.monotonic() - started)
    finally:
        database.stop()
    return 0


def migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    database = db.open_database(settings.database_url, settings.home)
    try:
        asyncio.run(db.migrate(database.credentials))
    finally:
        database.stop()
    print("migrations applied", file=sys.stderr)
    return 0


async def _member_subject(subject: str) -> str:
    """A member's UUID from their email or their global ID, checked in the database."""
    import uuid

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
    database = db.open_database(settings.database_url, settings.home)

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
    import signal

    from domain.program.config import load
    from notifications import worker as jobs

    settings = _settings()
    program = load(settings.program)

    async def work(database: db.Database) -> None:
        task = asyncio.create_task(jobs.run(settings, program, database.dsn()))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        log.info("worker running")
        with contextlib.suppress(asyncio.CancelledError):
            await task

    _with_database(settings, work, pool_max=8)
    return 0


def expire(args: argparse.Namespace) -> int:
    """The daily pass, now: release pending points and expire past-due lots."""
    from domain.program.config import load
    from domain.wallets import service as wallets

    settings = _settings()
    program = load(settings.program)
    result = _with_database(settings, lambda _db: wallets.run_expiry(program))
    print(f"released pending points of {result.released_members} members; expired {result.expired}")
    return 0


def schema(args: argparse.Namespace) -> int:
    from api.schema import sdl

    sys.stdout.write(sdl())
    return 0


def documents(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

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
    p = argparse.ArgumentParser(prog="loyalty", description="The loyalty platform's API and tools.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the API (embedded PostgreSQL unless LOYALTY_DATABASE_URL)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    s.add_argument("--workers", type=int, default=1, help="API processes sharing the port (default 1)")
    s.add_argument("--no-worker", action="store_true", help="do not run the background worker in-process")
    s.set_defaults(func=serve)

    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=migrate)

    t = sub.add_parser("token", help="print an access token")
    t.add_argument("--role", required=True, choices=["member", "staff", "marketer"])
    t.add_argument("--subject", required=True, help="member: id or email; staff/marketer: a name")
    t.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    t.set_defaults(func=token)

    d = sub.add_parser("seed", help="load demo data")
    d.add_argument("--demo", action="store_true", help="demo members, and tokens to try them with")
    d.set_defaults(func=seed)

    w = sub.add_parser("worker", help="run the background worker alone (jobs, push delivery)")
    w.set_defaults(func=worker)

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
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    warnings.filterwarnings("ignore", module="platformdirs")
    if getattr(args, "ttl", 3600) < 1 or getattr(args, "ttl", 0) > 366 * 86400:
        print("error: --ttl must be between 1 second and a year", file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(args.func(args))
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        from domain.program.config import ProgramError

        if isinstance(exc, ProgramError):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
