"""The `loyalty` command as a user runs it: a real process, a real port, real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from domain import db
from tests.processes import ENROLL, LOYALTY, free_port, loyalty_env, post, run_loyalty, stop, wait_ready


def _serve(port: int, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [LOYALTY, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_starts_on_the_embedded_database_and_stops_cleanly(tmp_path: Path):
    """The README's one command: no database configured, an empty ./.loyalty/."""
    port = free_port()
    env = loyalty_env()
    proc = _serve(port, tmp_path, env)
    try:
        wait_ready(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200

        staff = run_loyalty(["token", "--role", "staff", "--subject", "till-1"], tmp_path, env)
        assert staff.returncode == 0, staff.stderr
        enrolled = post(port, ENROLL, staff.stdout.strip(), {"e": "ana@example.com"})
        member_id = enrolled["data"]["enrollMember"]["member"]["id"]

        # a member token by email and by id, both for the same member
        for subject in ("ana@example.com", member_id):
            member = run_loyalty(["token", "--role", "member", "--subject", subject], tmp_path, env)
            assert member.returncode == 0, member.stderr
            me = post(port, "{ me { id email } }", member.stdout.strip())
            assert me["data"]["me"] == {"id": member_id, "email": "ana@example.com"}

        unknown = run_loyalty(["token", "--role", "member", "--subject", "nobody@example.com"], tmp_path, env)
        assert unknown.returncode == 1
        assert "no member" in unknown.stderr

        seeded = run_loyalty(["seed", "--demo"], tmp_path, env)
        assert seeded.returncode == 0, seeded.stderr
        assert "kenji@example.com" in seeded.stdout
    finally:
        code = stop(proc)
    assert code == 0
    # Ctrl-C stopped the embedded PostgreSQL too
    assert not (tmp_path / ".loyalty" / "pgdata" / "postmaster.pid").exists()

    # and it starts again on the existing data, which is still there
    port = free_port()
    proc = _serve(port, tmp_path, env)
    try:
        wait_ready(proc, port)
        member = run_loyalty(["token", "--role", "member", "--subject", "ana@example.com"], tmp_path, env)
        assert post(port, "{ me { email } }", member.stdout.strip())["data"]["me"]["email"] == "ana@example.com"
    finally:
        assert stop(proc) == 0


@pytest.fixture
def fresh_database_url(database: db.Database):
    """An empty database on the test server, as a deployment would point at."""
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs LOYALTY_TEST_DATABASE_URL (a server the subprocess can reach by URL)")
    name = f"loyalty_cli_{uuid.uuid4().hex[:8]}"
    creds = db.credentials_from_url(url)

    def run(sql: str) -> None:
        async def go() -> None:
            conn = await db.raw_connection(creds)
            await conn.execute(sql)
            await conn.close()

        asyncio.run(go())

    return name, creds, run


def test_serve_with_a_configured_database(tmp_path: Path, fresh_database_url):
    name, creds, run = fresh_database_url
    run(f'CREATE DATABASE "{name}"')
    try:
        url = db.Database({**creds, "database": name}).dsn()
        env = loyalty_env(LOYALTY_DATABASE_URL=url, LOYALTY_JWT_SECRET="x" * 40)
        migrated = run_loyalty(["migrate"], tmp_path, env)
        assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        proc = _serve(port, tmp_path, env)
        try:
            wait_ready(proc, port)
            staff = run_loyalty(["token", "--role", "staff", "--subject", "till-1"], tmp_path, env).stdout.strip()
            result = post(port, ENROLL, staff, {"e": "bo@example.com"})
            assert result["data"]["enrollMember"]["userErrors"] == []
            expired = run_loyalty(["expire"], tmp_path, env)
            assert expired.returncode == 0, expired.stderr
            # nothing due: one empty batch each for pending and due points
            assert re.fullmatch(
                r"released pending points of 0 members; expired 0 in 2 batches, longest batch [0-9.]+ s",
                expired.stdout.strip(),
            ), expired.stdout
        finally:
            assert stop(proc) == 0
        assert not (tmp_path / ".loyalty" / "pgdata").exists()  # no embedded server was started
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_bad_program_file_stops_serve_with_a_precise_error(tmp_path: Path):
    program = tmp_path / "program.toml"
    program.write_text('version = 1\n[program]\nname = "X"\ncurrency = "EURO"\n')
    result = run_loyalty(["serve"], tmp_path, loyalty_env(LOYALTY_PROGRAM=str(program)))
    assert result.returncode == 2
    assert f"{program}: program.currency: 'EURO' is not an ISO 4217 currency code" in result.stderr
    assert f"{program}: earning: Field required" in result.stderr


def test_production_refuses_to_start_without_a_signing_key(tmp_path: Path):
    result = run_loyalty(
        ["serve"], tmp_path, loyalty_env(LOYALTY_ENV="production", LOYALTY_DATABASE_URL="postgres://x@127.0.0.1/x")
    )
    assert result.returncode == 2
    assert "LOYALTY_JWT_SECRET" in result.stderr


def test_token_rejects_unknown_roles(tmp_path: Path):
    result = run_loyalty(["token", "--role", "admin", "--subject", "x"], tmp_path, loyalty_env())
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
