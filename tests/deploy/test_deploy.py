"""What production runs: the image (no embedded PostgreSQL, nothing compiled) and
compose.yaml (PostgreSQL, two API processes, one worker, the program file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from domain.program.config import load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_pgserver_is_an_extra_that_development_and_tests_install():
    project = _project()
    assert not [d for d in project["dependencies"] if d.startswith("pgserver")]
    assert any(d.startswith("pgserver") for d in project["optional-dependencies"]["embedded"])
    assert "loyalty[embedded]" in project["optional-dependencies"]["test"]
    assert 'pip install -e ".[test]"' in (ROOT / "README.md").read_text()


def test_the_image_installs_no_extra_and_compiles_nothing():
    dockerfile = (ROOT / "Dockerfile").read_text()
    install = [line for line in dockerfile.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert install == [" && /opt/venv/bin/pip install --only-binary=:all: . \\"], install
    assert "build-essential" not in dockerfile and "gcc" not in dockerfile


def _services(command: str) -> dict[str, dict]:
    return {name: s for name, s in COMPOSE["services"].items() if " ".join(s.get("command", [])).startswith(command)}


def test_compose_runs_postgres_two_api_processes_one_worker_and_the_program_file():
    services = COMPOSE["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    apis = _services("loyalty serve")
    workers = _services("loyalty worker")
    assert len(apis) == 2 and len(workers) == 1, list(services)
    ports = set()
    for name, service in {**apis, **workers}.items():
        env = service["environment"]
        assert env["LOYALTY_ENV"] == "production", name
        assert "@postgres:5432/" in env["LOYALTY_DATABASE_URL"], name
        assert env["LOYALTY_JWT_SECRET"].startswith("${LOYALTY_JWT_SECRET:?"), name  # never a default secret
        mounted = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        source = ROOT / mounted[env["LOYALTY_PROGRAM"]]
        assert load(source).program.name, name  # the mounted program file exists and is valid
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    for name, service in apis.items():
        assert "--no-worker" in service["command"], f"{name}: the worker runs apart"
        ports |= {p.split(":")[-2] for p in service["ports"]}
    assert len(ports) == 2


def _docker() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker(), reason="needs a Docker daemon")
def test_compose_up_serves_the_mounted_program_on_both_api_processes(tmp_path: Path):
    project = f"loyalty-test-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "-p", project, "-f", str(ROOT / "compose.yaml")]
    env = {**os.environ, "LOYALTY_JWT_SECRET": "c" * 48}
    try:
        subprocess.run([*compose, "up", "-d", "--build", "--wait"], env=env, check=True, timeout=900)
        program = load(ROOT / "deploy" / "program.toml")
        minted = [*compose, "exec", "-T", "api-1", "loyalty", "token", "--role", "staff", "--subject", "compose-test"]
        token = subprocess.run(minted, env=env, capture_output=True, text=True, check=True).stdout.strip()
        for port in (8001, 8002):
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json() == {"ready": True}
            answer = httpx.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": "{ program { name } }"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            assert answer.json()["data"]["program"]["name"] == program.program.name
        states = subprocess.run([*compose, "ps", "--format", "json"], env=env, capture_output=True, text=True)
        running = [json.loads(line) for line in states.stdout.splitlines() if line.strip()]
        assert {s["Service"] for s in running if s["State"] == "running"} >= {"postgres", "api-1", "api-2", "worker"}
    finally:
        subprocess.run([*compose, "down", "-v", "--timeout", "20"], env=env, timeout=300)
