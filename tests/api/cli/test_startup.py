"""Fail at start, not later: each configuration mistake stops `loyalty` before anything
serves, with one line naming the variable, a non-zero exit code and no traceback; and a
worker that dies after start takes readiness down at once, saying why."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from domain.settings import ConfigurationError, Settings
from tests.fake_fcm import service_account
from tests.processes import loyalty_env, run_loyalty

SECRET = "s" * 40


def _refusal(tmp_path: Path, command: list[str], **env: str) -> str:
    """The one line `loyalty COMMAND` prints when refusing to start."""
    result = run_loyalty(command, tmp_path, loyalty_env(**env))
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not (tmp_path / ".loyalty" / "pgdata").exists(), "refused, yet an embedded database was started"
    return lines[0]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"LOYALTY_ENV": "prod"},
            "error: LOYALTY_ENV='prod': Input should be 'development' or 'production'",
            id="env not a known value",
        ),
        pytest.param(
            {"LOYALTY_DATABASE_URL": "mysql://root:pw@db/loyalty"},
            "error: LOYALTY_DATABASE_URL: must start with postgres:// or postgresql://, not mysql://",
            id="mysql url",
        ),
        pytest.param(
            {"LOYALTY_DATABASE_URL": "postgres://postgres@127.0.0.1:1/loyalty"},
            "error: LOYALTY_DATABASE_URL: cannot connect to 127.0.0.1:1/loyalty: connection refused",
            id="database unreachable",
        ),
        pytest.param(
            {"LOYALTY_PUSH_BACKEND": "firebase"},
            "error: LOYALTY_FIREBASE_CREDENTIALS must be set when LOYALTY_PUSH_BACKEND=firebase"
            " (the service-account JSON file that sends the pushes)",
            id="firebase without credentials",
        ),
        pytest.param(
            {"LOYALTY_PUSH_BACKEND": "firebase", "LOYALTY_FIREBASE_CREDENTIALS": "/nonexistent/sa.json"},
            "error: LOYALTY_FIREBASE_CREDENTIALS='/nonexistent/sa.json': no such file",
            id="firebase credentials missing",
        ),
        pytest.param(
            {"LOYALTY_PUSH_BACKEND": "apns"},
            "error: LOYALTY_PUSH_BACKEND='apns': Input should be 'log' or 'firebase'",
            id="unknown push backend",
        ),
        pytest.param(
            {"LOYALTY_HOME": "/proc/loyalty"},
            "error: LOYALTY_HOME='/proc/loyalty': cannot keep the embedded database and the development key there"
            " (No such file or directory)",
            id="home not writable",
        ),
        pytest.param(
            {"LOYALTY_PROGRAM": "/nonexistent/program.toml"},
            "error: LOYALTY_PROGRAM='/nonexistent/program.toml': no such file",
            id="program file missing",
        ),
        pytest.param(
            {"LOYALTY_ENV": "production", "LOYALTY_DATABASE_URL": "postgres://x@127.0.0.1/x"},
            "error: LOYALTY_JWT_SECRET must be set to at least 32 characters in production",
            id="production without a signing key",
        ),
        pytest.param(
            {"LOYALTY_ENV": "production", "LOYALTY_JWT_SECRET": SECRET},
            "error: LOYALTY_DATABASE_URL must be set in production (no embedded database)",
            id="production without a database url",
        ),
        pytest.param(
            {"LOYALTY_ENV": "production", "LOYALTY_JWT_SECRET": SECRET, "LOYALTY_DATABASE_URL": "postgres://x@h/x"},
            "error: LOYALTY_PROGRAM must be set in production: the path to your program file (the demo program"
            " is for development only)",
            id="production without a program file",
        ),
    ],
)
def test_serve_refuses_a_mistake_with_one_line_naming_it(tmp_path: Path, env: dict[str, str], message: str):
    assert _refusal(tmp_path, ["serve", "--port", "1"], **env) == message


def test_a_file_that_is_not_a_service_account_is_refused(tmp_path: Path):
    credentials = tmp_path / "sa.json"
    credentials.write_text(json.dumps({"type": "authorized_user"}))
    line = _refusal(tmp_path, ["serve"], LOYALTY_PUSH_BACKEND="firebase", LOYALTY_FIREBASE_CREDENTIALS=str(credentials))
    assert line.startswith(f"error: LOYALTY_FIREBASE_CREDENTIALS='{credentials}': not a Firebase service-account")


def test_a_service_account_without_a_project_is_refused(tmp_path: Path):
    account = service_account("http://127.0.0.1:1/token")
    del account["project_id"]
    credentials = tmp_path / "sa.json"
    credentials.write_text(json.dumps(account))
    line = _refusal(
        tmp_path, ["worker"], LOYALTY_PUSH_BACKEND="firebase", LOYALTY_FIREBASE_CREDENTIALS=str(credentials)
    )
    assert line == f"error: LOYALTY_FIREBASE_CREDENTIALS='{credentials}': the file has no project_id"


@pytest.mark.parametrize("command", [["worker"], ["migrate"], ["expire"], ["jobs", "run", "expire_points"]])
def test_every_command_refuses_an_unreachable_database_the_same_way(tmp_path: Path, command: list[str]):
    line = _refusal(tmp_path, command, LOYALTY_DATABASE_URL="postgres://postgres@127.0.0.1:1/loyalty")
    assert line == "error: LOYALTY_DATABASE_URL: cannot connect to 127.0.0.1:1/loyalty: connection refused"


async def test_a_worker_that_dies_takes_readiness_down_and_says_why(database, tmp_path, caplog, settings):
    """The in-process worker starts its push sender after the checks: if it dies then
    (here its credentials file vanished in between), /readyz stops saying ready."""
    credentials = tmp_path / "sa.json"
    credentials.write_text(json.dumps(service_account("http://127.0.0.1:1/token")))
    configured = settings.model_copy(update={"push_backend": "firebase", "firebase_credentials": credentials})
    app = create_app(configured, database=database, manage_orm=False, worker=True)
    credentials.unlink()
    caplog.set_level(logging.ERROR, logger="loyalty.api")
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for _ in range(100):
                ready = await client.get("/readyz")
                if ready.status_code == 503:
                    break
                await asyncio.sleep(0.05)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert ready.json()["reason"].startswith("worker stopped: [Errno 2] No such file or directory")
    assert any("in-process worker stopped" in r.getMessage() for r in caplog.records)


def test_settings_from_the_environment_name_every_mistake(monkeypatch):
    """Two mistakes at once: two lines, each naming its variable (the CLI prints each)."""
    monkeypatch.setenv("LOYALTY_ENV", "prod")
    monkeypatch.setenv("LOYALTY_PUSH_BATCH", "0")
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_environment()
    assert str(refused.value).splitlines() == [
        "LOYALTY_ENV='prod': Input should be 'development' or 'production'",
        "LOYALTY_PUSH_BATCH='0': Input should be greater than or equal to 1",
    ]


def test_the_database_url_never_appears_in_a_refusal(tmp_path: Path):
    """It carries the password."""
    result = run_loyalty(["migrate"], tmp_path, loyalty_env(LOYALTY_DATABASE_URL="postgres://u:hunter2@127.0.0.1:1/x"))
    assert result.returncode == 2 and "hunter2" not in result.stderr
    assert "cannot connect to 127.0.0.1:1/x" in result.stderr
