"""Real JavaScript GraphQL tools from npm (tests/js, pinned by its lock file) against a
real running server: graphql-http's conformance audit, graphql-codegen's persisted
documents, and Apollo Client's persisted-query link."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import httpx
import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    NoUnusedFragmentsRule,
    OperationDefinitionNode,
    build_schema,
    parse,
    print_ast,
    specified_rules,
    validate,
)

from api.app import create_app
from api.documents import manifest_of
from domain.settings import Settings
from tests.conftest import FIREBASE_PROJECT, TEST_SECRET, Member, enrolled, js_installed, serving

ROOT = Path(__file__).resolve().parents[2]


async def node(script: str, *args: str, timeout: float = 20) -> str:
    """Runs a script of tests/js with Node, bounded in time; its stdout."""
    js = await js_installed()
    proc = await asyncio.create_subprocess_exec(
        "node", str(js / script), *args, cwd=js, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture
async def ana(gql, tokens) -> Member:
    return await enrolled(gql, tokens, "ana@example.com")


@contextlib.asynccontextmanager
async def own_server(tmp_path, database, **settings: str):
    """A live server of its own (its own rate-limit counters too), with these settings."""
    app = create_app(
        Settings(
            jwt_secret=TEST_SECRET, firebase_project_id=FIREBASE_PROJECT, home=tmp_path, env="development", **settings
        ),
        database=database,
        manage_orm=False,
    )
    async with app.router.lifespan_context(app), serving(app) as address:
        yield address


async def test_graphql_http_audit_passes_every_must_and_should(tmp_path, database):
    # Its own server: the audit's ~65 requests without a token count against no other test's limit.
    async with own_server(tmp_path, database) as address:
        results = json.loads(await node("audit.mjs", f"http://{address}/graphql"))
    assert len(results) >= 61
    failing = [
        f"{r['status']} {r['id']} {r['name']}: {r.get('reason')} (HTTP {r.get('responseStatus')}: "
        f"{r.get('responseBody', '')[:200]})"
        for r in results
        if r["status"] != "ok"
    ]
    assert failing == []


async def test_apollo_registers_a_query_automatically_then_sends_its_hash_alone(live_server, ana):
    seen = json.loads(await node("apollo.mjs", "auto", f"http://{live_server}/graphql", ana.token))
    assert seen["first"] == {"data": {"me": {"__typename": "Member", "id": ana.id, "displayName": None}}}
    assert seen["second"] == seen["first"]
    # hash alone → PERSISTED_QUERY_NOT_FOUND → hash and text; then the hash alone runs.
    assert [(r["query"], r["hash"] is not None) for r in seen["sent"]] == [(False, True), (True, True), (False, True)]
    assert seen["requestsForFirst"] == 2
    assert len({r["hash"] for r in seen["sent"]}) == 1


async def test_apollo_runs_a_trusted_id_and_surfaces_the_refusal_of_other_text(tmp_path, database, ana):
    source = tmp_path / "app.graphql"
    source.write_text("query Me { me { id displayName } }")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(manifest_of([source])))

    async with own_server(tmp_path, database, trusted_documents=str(manifest), trusted_only="members") as address:
        seen = json.loads(await node("apollo.mjs", "trusted", f"http://{address}/graphql", ana.token, str(manifest)))

    assert seen["me"] == {"data": {"me": {"id": ana.id, "displayName": None}}}
    assert seen["mine"] == {"error": "CombinedGraphQLErrors", "codes": ["TRUSTED_DOCUMENT_REQUIRED"]}
    # Me went as its id alone; Mine's unknown hash was refused, then its text too.
    assert [r["query"] for r in seen["sent"]] == [False, False, True]
    assert seen["sent"][0]["hash"] == next(iter(json.loads(manifest.read_text()))).removeprefix("sha256:")


def member_app_documents_that_validate(path: Path) -> list[str]:
    """Writes to `path` the contract's member-app document less the operations today's
    schema cannot run yet (the contract runs ahead of the server); the names kept."""
    schema = build_schema((ROOT / "schema.graphql").read_text())
    document = parse((ROOT / "contract" / "operations" / "member-app.graphql").read_text())
    fragments = tuple(d for d in document.definitions if isinstance(d, FragmentDefinitionNode))
    # Each operation with every fragment: a fragment some other operation uses is fine.
    rules = [r for r in specified_rules if r is not NoUnusedFragmentsRule]
    kept = tuple(
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and not validate(schema, DocumentNode(definitions=(d, *fragments)), rules)
    )
    path.write_text(print_ast(DocumentNode(definitions=(*fragments, *kept))))
    return [d.name.value for d in kept]


async def test_codegen_persisted_documents_are_served_by_their_ids(tmp_path, database, ana):
    """An app team's build: graphql-codegen's client preset writes persisted-documents.json
    from the contract's documents; the server loads it as LOYALTY_TRUSTED_DOCUMENTS and
    runs a member's requests by those ids alone."""
    source = tmp_path / "member-app.graphql"
    names = member_app_documents_that_validate(source)
    assert {"Me", "MemberCard", "WalletHistory", "Rewards"} <= set(names)
    out = tmp_path / "gql"
    await node("codegen.mjs", str(ROOT / "schema.graphql"), str(out), str(source))
    manifest = out / "persisted-documents.json"
    written = json.loads(manifest.read_text())
    ids = {_operation_name(text): key for key, text in written.items()}
    assert set(ids) == set(names)
    # The ids the generated documents carry (`__meta__.hash`), as the app sends them.
    assert all(key.startswith("sha256:") for key in written)

    async with own_server(tmp_path, database, trusted_documents=str(manifest), trusted_only="members") as address:
        async with httpx.AsyncClient(
            base_url=f"http://{address}", headers={"Authorization": f"Bearer {ana.token}"}
        ) as http:
            me = await http.post("/graphql", json={"documentId": ids["Me"]})
            rewards = await http.get(
                "/graphql", params={"documentId": ids["Rewards"], "variables": json.dumps({"first": 5})}
            )
            text = await http.post("/graphql", json={"query": written[ids["Me"]]})
    assert me.status_code == 200 and me.json()["data"]["me"]["id"] == ana.id
    assert "errors" not in me.json()
    assert rewards.status_code == 200 and "errors" not in rewards.json(), rewards.json()
    assert text.json()["errors"][0]["extensions"]["code"] == "TRUSTED_DOCUMENT_REQUIRED"


def _operation_name(text: str) -> str:
    return next(d.name.value for d in parse(text).definitions if isinstance(d, OperationDefinitionNode))
