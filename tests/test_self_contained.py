"""A clone of the repository alone, with no contract folder beside it, passes the
contract tests: they read the project's own copy of the client documents."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_clone_with_nothing_beside_it_passes_the_contract_tests(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "lonely" / "loyalty"  # its parent holds nothing else: no shared/
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{ROOT}", str(clone)], check=True)
    assert not (clone.parent.parent / "shared").exists()
    env = {**os.environ, "PYTHONPATH": str(clone)}
    env.pop("LOYALTY_CONTRACT_DIR", None)
    # A basetemp of its own: pytest would otherwise reset the shared one's permissions.
    basetemp = f"--basetemp={tmp_path / 'bt'}"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", basetemp, "tests/contract"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" in run.stdout  # the copy check skips: nothing beside it
