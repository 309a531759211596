"""The layer and area rules ([tool.importlinter] in pyproject.toml) hold: a new import
that makes the domain import the API, an area import one above it, or two modules
import each other fails here, in CI, whether it sits at the top of a file or in a function.
Test modules import no other test module: what they share lives in a conftest.py or a
plain module (tests/processes.py), so a test file can move or go without breaking others.
Tests mirror the code: tests/<layer>/<area>/test_*.py, so a test is found where its code is."""

from __future__ import annotations

import ast
import re
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


# Project-wide checks, about the repository as a whole rather than one package of it.
TOP_LEVEL = {"test_architecture.py", "test_self_contained.py"}


def _misplaced(root: Path) -> list[str]:
    """Test modules whose folder under tests/ names no package, module or folder of the
    code (api/wallets, domain/tiers, notifications/nudges, api/cli for api/cli.py,
    deploy...), or that lack an __init__.py on the way; the domain's tests sit in an area
    (tests/domain/<area>/), or beside it only when named after a kernel module
    (tests/domain/test_keys.py for domain/keys.py). New areas need nothing here."""
    wrong = []
    for path in sorted((root / "tests").rglob("test_*.py")):
        mirror = path.parent.relative_to(root / "tests")
        if "node_modules" in path.parts:
            continue
        if mirror == Path("."):
            ok = path.name in TOP_LEVEL
        elif mirror == Path("domain"):
            ok = (root / "domain" / path.name.removeprefix("test_")).is_file()
        else:
            ok = mirror.parts[0] != "tests" and (
                (root / mirror).is_dir() or (root / mirror).with_suffix(".py").is_file()
            )
            ok = ok and all(
                (root / "tests" / Path(*mirror.parts[:n]) / "__init__.py").is_file()
                for n in range(1, len(mirror.parts) + 1)
            )
        if not ok:
            wrong.append(str(path.relative_to(root)))
    return wrong


def test_every_test_module_sits_where_its_code_is():
    assert _misplaced(ROOT) == []


def test_the_mirror_check_refuses_a_test_in_the_wrong_place(tmp_path):
    for code in ("api/wallets/__init__.py", "api/cli.py", "domain/keys.py", "domain/offers/__init__.py"):
        (tmp_path / code).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / code).touch()
    placed = [
        "tests/test_architecture.py",
        "tests/api/test_cost.py",
        "tests/api/wallets/test_ledger.py",
        "tests/api/cli/test_cli.py",
        "tests/domain/test_keys.py",
        "tests/domain/offers/test_offers.py",  # an area added later needs nothing here
        # misplaced:
        "tests/test_cli.py",
        "tests/domain/test_ledger.py",
        "tests/domain/segments/test_segments.py",
        "tests/api/payments/test_payments.py",
    ]
    for name in placed:
        test = tmp_path / name
        test.parent.mkdir(parents=True, exist_ok=True)
        test.touch()
        folder = test.parent
        while folder != tmp_path:  # a package all the way down, as pytest needs
            (folder / "__init__.py").touch()
            folder = folder.parent
    (tmp_path / "api" / "rewards").mkdir()
    (tmp_path / "tests" / "api" / "rewards").mkdir()
    (tmp_path / "tests" / "api" / "rewards" / "test_rewards.py").touch()  # no __init__.py
    assert _misplaced(tmp_path) == [
        "tests/api/payments/test_payments.py",
        "tests/api/rewards/test_rewards.py",
        "tests/domain/segments/test_segments.py",
        "tests/domain/test_ledger.py",
        "tests/test_cli.py",
    ]


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


# --- who runs queries ---------------------------------------------------------------
# Only an area's repository (and the kernel's db.py, migrations) talks to the database:
# a SQL call, a raw SQL string, or an ORM query on a model, anywhere else, fails here.
QUERY_OWNERS = ("domain/db.py", "domain/migrations/")
# Tortoise's client (`execute_query_dict`, ...) and asyncpg's (`execute`, `fetchval`, ...)
SQL_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval"}
# The GraphQL layer's own execute_* methods (the view's, graphql-core's executor's): not SQL.
GRAPHQL_EXECUTION = {"execute_single", "execute_field"}
ORM_QUERIES = {
    "filter",
    "get",
    "get_or_none",
    "create",
    "all",
    "exclude",
    "select_for_update",
    "bulk_create",
    "update_or_create",
    "get_or_create",
    "raw",
    "exists",
    "first",
    "annotate",
}
ORM_WRITES = {"save", "delete", "refresh_from_db"}
# SQL as this code base writes it: upper-case keywords (prose that says "select" is not SQL)
SQL_STRING = re.compile(r"^\s*(?:WITH \w+ AS|SELECT\s|INSERT INTO|UPDATE \w+ (?:\w+ )?SET|DELETE FROM)")


def _model_names(tree: ast.AST) -> set[str]:
    """Names bound by `from <...>.models import X [as Y]`: the ORM models a module uses."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] == "models"
        for alias in node.names
    }


def queries_in(source: str) -> list[str]:
    """Where a module queries the database itself: `execute_*` calls, the driver's
    execute/fetch calls, SQL strings, and ORM queries or writes on imported models
    (`Member.get_or_none(...)`, `Member.filter(...).update(...)`, `row.save()`)."""
    tree = ast.parse(source)
    models = _model_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STRING.match(node.value):
            found.append(f"{node.lineno}: SQL string")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, receiver = node.func.attr, node.func.value
        while isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute):
            receiver = receiver.func.value  # Model.filter(...).using_db(conn).first()
        if name in SQL_CALLS or (name.startswith("execute_") and name not in GRAPHQL_EXECUTION):
            found.append(f"{node.lineno}: {name}")
        elif isinstance(receiver, ast.Name) and receiver.id in models and name in ORM_QUERIES | ORM_WRITES:
            found.append(f"{node.lineno}: {receiver.id}.{name}")
        elif name in ORM_WRITES and "using_db" in {k.arg for k in node.keywords}:
            found.append(f"{node.lineno}: .{name}(using_db=...)")
    return sorted(set(found), key=lambda f: int(f.split(":")[0]))


def test_only_repositories_run_queries():
    offenders = {}
    for package in ("api", "domain", "notifications"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(QUERY_OWNERS) or re.fullmatch(r"domain/\w+/repository\.py", relative):
                continue
            if found := queries_in(path.read_text()):
                offenders[relative] = found
    assert offenders == {}, "\n".join(f"{p}: {', '.join(f)}" for p, f in offenders.items())


def test_the_query_check_sees_sql_and_orm_but_not_dicts():
    flagged = queries_in(
        "from domain.members.models import Member as MemberRow\n"
        "async def f(conn, d, row):\n"
        "    await conn.execute_query_dict('SELECT 1')\n"  # 3: both the call and the string
        "    await MemberRow.get_or_none(id=1)\n"  # 4
        "    await MemberRow.filter(id=1).using_db(conn).select_for_update().first()\n"  # 5
        "    await row.save(using_db=conn)\n"  # 6
        "    await conn.execute('UPDATE members SET x = 1')\n"  # 7
        "    d.get('x'); d.filter(1); [].all(); 'select the best one'\n"  # 8: nothing
    )
    assert sorted({int(f.split(":")[0]) for f in flagged}) == [3, 4, 5, 6, 7], flagged
