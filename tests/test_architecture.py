"""The layer and area rules ([tool.importlinter] in pyproject.toml) hold: a new import
that makes the domain import the API, an area import one above it, or two modules
import each other fails here, in CI, whether it sits at the top of a file or in a function."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_import_contracts_are_kept():
    # --no-cache: the graph is built from the files as they are, not from a stale cache.
    run = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout, run.stdout  # every contract was checked
