"""The layer and area rules ([tool.importlinter] in pyproject.toml) hold: a new import
that makes the domain import the API, an area import one above it, or two modules
import each other fails here, in CI, whether it sits at the top of a file or in a function.
Test modules import no other test module: what they share lives in a conftest.py or a
plain module (tests/processes.py), so a test file can move or go without breaking others."""

from __future__ import annotations

import ast
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


def _imported_test_modules(path: Path) -> list[str]:
    """The test_* modules a file imports, absolute or relative, at any depth in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # `from . import test_x` names the module in the imported names
            modules = [node.module or ""] + [alias.name for alias in node.names if not node.module]
        else:
            continue
        found += [m for m in modules if m.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_no_test_module_imports_another():
    offenders = {
        str(path.relative_to(ROOT)): modules
        for path in sorted((ROOT / "tests").rglob("test_*.py"))
        if "node_modules" not in path.parts and (modules := _imported_test_modules(path))
    }
    assert offenders == {}, offenders


def test_the_layout_check_sees_every_form_of_import(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import tests.api.test_edge\n"
        "from tests.api.test_ledger import OPS\n"
        "from .test_live import Member\n"
        "from . import test_metrics\n"
        "from tests.conftest import OPS\n"
        "from tests.processes import stop\n"
        "def f():\n"
        "    from tests.test_cli import ENROLL\n"
    )
    assert sorted(_imported_test_modules(sample)) == [
        "test_live",
        "test_metrics",
        "tests.api.test_edge",
        "tests.api.test_ledger",
        "tests.test_cli",
    ]
