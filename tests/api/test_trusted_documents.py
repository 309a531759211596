"""Trusted documents on a running app: by `documentId` (POST and GET) and by Apollo's
persisted-query hash, the LOYALTY_TRUSTED_ONLY policy and its production default, the
same over WebSocket, and automatic persisted queries where text is allowed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

import domain.program
from api.app import create_app
from api.documents import manifest_of
from domain.identity.tokens import Role, TokenIssuer
from domain.settings import ConfigurationError, Settings
from tests.conftest import FIREBASE_PROJECT, TEST_SECRET, Socket, count, enroll, member_uuid, serving

DOCUMENTS = """
query Me { me { id displayName } }
query Catalogue {
  program { name currency tiers { name } stores { key name } rewards(first: 10) { edges { node { name pointsCost } } } }
}
mutation Enroll($email: String!) { enrollMember(input: { email: $email }) { member { id } userErrors { code } } }
subscription Wallet { walletUpdated { cursor } }
"""
NOT_TRUSTED = "query Mine { me { email } }"
DEMO_PROGRAM = Path(domain.program.__file__).parent / "demo.toml"
PRODUCTION_SECRET = "production-secret-of-at-least-32-chars"


@pytest.fixture
def manifest(tmp_path) -> tuple[Path, dict[str, str]]:
    source = tmp_path / "app.graphql"
    source.write_text(DOCUMENTS)
    documents = manifest_of([source])
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(documents))
    return path, {text.split()[1].split("(")[0]: key for key, text in documents.items()}


def _settings(tmp_path, manifest_path, **overrides) -> Settings:
    values = {
        "jwt_secret": TEST_SECRET,
        "firebase_project_id": FIREBASE_PROJECT,
        "home": tmp_path,
        "trusted_documents": str(manifest_path),
        "program": DEMO_PROGRAM,
    }
    values.update(overrides)
    return Settings(**values)


class Client:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, body: dict, token: str | None = None, **headers: str) -> httpx.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.post("/graphql", json=body, headers=headers)

    async def get(self, params: dict, token: str | None = None, **headers: str) -> httpx.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.get("/graphql", params=params, headers=headers)


async def _app_client(settings: Settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http:
            yield app, Client(http)


@pytest.fixture
async def members_only(tmp_path, manifest):
    """Development, LOYALTY_TRUSTED_ONLY=members."""
    async for pair in _app_client(_settings(tmp_path, manifest[0], trusted_only="members")):
        yield pair


@pytest.fixture
async def production(tmp_path, manifest, monkeypatch, database):
    """Production with a manifest and LOYALTY_TRUSTED_ONLY unset."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = _settings(tmp_path, manifest[0], env="production", jwt_secret=PRODUCTION_SECRET)
    settings = settings.model_copy(update={"database_url": database.dsn()})
    async for pair in _app_client(settings):
        yield pair


@pytest.fixture
async def open_app(tmp_path, manifest):
    """Development, manifest loaded, text documents allowed (the default)."""
    async for pair in _app_client(_settings(tmp_path, manifest[0])):
        yield pair


def _errors(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_production_refuses_a_members_text_and_runs_the_trusted_id(production, manifest, gql, tokens):
    _, client = production
    ana = await enroll(gql, tokens, "ana@example.com")
    token = TokenIssuer(PRODUCTION_SECRET.encode()).mint(Role.MEMBER, str(member_uuid(ana["id"])))[0]

    refused = await client.post({"query": NOT_TRUSTED}, token)
    assert refused.status_code == 200 and _errors(refused) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert "data" not in refused.json() or refused.json()["data"] is None

    by_id = await client.post({"documentId": manifest[1]["Me"]}, token)
    assert by_id.json() == {"data": {"me": {"id": ana["id"], "displayName": None}}}

    # Apollo's persisted-query link sends the bare hex in extensions.
    bare = manifest[1]["Me"].removeprefix("sha256:")
    apollo = await client.post({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": bare}}}, token)
    assert apollo.json()["data"]["me"]["id"] == ana["id"]

    # The text of a trusted document, sent as text, is still text.
    text = (await client.post({"query": "query Me { me { id displayName } }\n"}, token)).json()
    assert [e["extensions"]["code"] for e in text["errors"]] == ["TRUSTED_DOCUMENT_REQUIRED"]


async def test_members_mode_refuses_text_without_a_token_but_staff_may_send_it(members_only, database, tokens):
    _, client = members_only
    anonymous = await client.post({"query": "{ program { name } }"})
    assert _errors(anonymous) == ["TRUSTED_DOCUMENT_REQUIRED"]

    enrol = 'mutation { enrollMember(input: { email: "bo@example.com" }) { member { id } userErrors { code } } }'
    assert await count(database, "members") == 0
    as_member = await client.post({"query": enrol}, tokens.member("00000000-0000-0000-0000-000000000001"))
    assert _errors(as_member) == ["TRUSTED_DOCUMENT_REQUIRED"]
    assert await count(database, "members") == 0  # refused before anything ran

    as_staff = await client.post({"query": enrol}, tokens.staff())
    assert as_staff.json()["data"]["enrollMember"]["userErrors"] == []
    assert await count(database, "members") == 1


async def test_all_mode_refuses_staff_text_too_and_runs_trusted_mutations(tmp_path, manifest, database, tokens):
    async for _, client in _app_client(_settings(tmp_path, manifest[0], trusted_only="all")):
        enrol = {"query": 'mutation { enrollMember(input: { email: "c@example.com" }) { userErrors { code } } }'}
        assert _errors(await client.post(enrol, tokens.staff())) == ["TRUSTED_DOCUMENT_REQUIRED"]
        trusted = {"documentId": manifest[1]["Enroll"], "variables": {"email": "c@example.com"}}
        answer = (await client.post(trusted, tokens.staff())).json()
        assert answer["data"]["enrollMember"]["userErrors"] == []
        assert await count(database, "members") == 1


async def test_an_unknown_id_is_persisted_query_not_found_with_200_json_whatever_was_accepted(members_only):
    _, client = members_only
    for body in (
        {"documentId": "sha256:" + "0" * 64},
        {"documentId": "not-a-hash"},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
    ):
        response = await client.post(body, Accept="application/graphql-response+json, application/json;q=0.9")
        assert response.status_code == 200, body
        assert response.headers["content-type"].startswith("application/json")
        assert _errors(response) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_documents_by_get_and_the_public_catalogue_is_cacheable(members_only, manifest, tokens, gql):
    _, client = members_only
    response = await client.get({"documentId": manifest[1]["Catalogue"]})
    assert response.status_code == 200, response.text
    program = response.json()["data"]["program"]
    assert program["name"] and program["currency"] and program["tiers"]
    assert response.headers["cache-control"] == "public, max-age=300"
    tag = response.headers["etag"]
    assert tag.startswith('W/"')

    again = await client.get({"documentId": manifest[1]["Catalogue"]}, **{"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag

    # The same document with a token: not for shared caches.
    staff = await client.get({"documentId": manifest[1]["Catalogue"]}, tokens.staff())
    assert staff.headers["cache-control"] == "no-store" and "etag" not in staff.headers

    # Member data by GET: never cacheable.
    ana = await enroll(gql, tokens, "ana@example.com")
    me = await client.get({"documentId": manifest[1]["Me"]}, tokens.member(member_uuid(ana["id"])))
    assert me.json()["data"]["me"]["id"] == ana["id"]
    assert me.headers["cache-control"] == "no-store" and "etag" not in me.headers


async def test_mutations_by_get_are_refused(members_only, manifest, database, tokens):
    _, client = members_only
    response = await client.get(
        {"documentId": manifest[1]["Enroll"], "variables": json.dumps({"email": "d@example.com"})}, tokens.staff()
    )
    assert response.status_code in (400, 405)
    assert await count(database, "members") == 0


async def test_apollo_automatic_persisted_queries_where_text_is_allowed(open_app, tokens):
    _, client = open_app
    text = "query Program { program { name } }"
    digest = hashlib.sha256(text.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}

    first = await client.post({"extensions": persisted})
    assert _errors(first) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = await client.post({"query": text, "extensions": persisted})
    assert registered.json()["data"]["program"]["name"]
    remembered = await client.post({"extensions": persisted})
    assert remembered.json() == registered.json()

    wrong = await client.post({"query": "{ program { currency } }", "extensions": persisted})
    assert _errors(wrong) == ["PERSISTED_QUERY_HASH_MISMATCH"]

    # A document that does not validate is not remembered.
    bad = "query Bad { program { nope } }"
    bad_hash = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(bad.encode()).hexdigest()}}
    assert (await client.post({"query": bad, "extensions": bad_hash})).json()["errors"]
    assert _errors(await client.post({"extensions": bad_hash})) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_trusted_document_is_not_parsed_or_validated_again(open_app, manifest):
    app, client = open_app
    catalogue = (await client.get({"documentId": manifest[1]["Catalogue"]})).json()
    assert catalogue["data"]["program"]["name"]
    # It ran from the tree made at load: nothing went through the validation cache.
    trusted = app.state.services.documents.trusted.get(manifest[1]["Catalogue"])
    assert app.state.schema.documents.get(trusted.text) is None
    text = "{ program { name } }"
    await client.post({"query": text})
    assert app.state.schema.documents.get(text) is not None  # while a text document does


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("query Broken { program { nope } }", "(Broken) does not validate: Cannot query field 'nope'"),
        ("query Deep { me { id } " + "}" * 1, None),
    ],
)
async def test_a_manifest_entry_that_does_not_validate_stops_the_start(tmp_path, entry, reason):
    if reason is None:
        entry, reason = "query Intro { __schema { types { name } } }", "(Intro) does not validate"
        overrides = {"env": "production", "jwt_secret": PRODUCTION_SECRET, "database_url": "postgres://x@y/z"}
    else:
        overrides = {}
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"sha256:" + hashlib.sha256(entry.encode()).hexdigest(): entry}))
    with pytest.raises(ConfigurationError) as caught:
        create_app(_settings(tmp_path, path, **overrides))
    assert str(caught.value).startswith(f"LOYALTY_TRUSTED_DOCUMENTS: {path}: entry sha256:")
    assert reason in str(caught.value)


async def test_sockets_follow_the_same_policy(tmp_path, manifest, gql, tokens, database):
    app = create_app(_settings(tmp_path, manifest[0], trusted_only="members"), database=database, manage_orm=False)
    ana = await enroll(gql, tokens, "ana@example.com")
    token = tokens.member(member_uuid(ana["id"]))
    async with app.router.lifespan_context(app), serving(app) as address:
        socket = await Socket.open(address, token)
        try:
            await socket.ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": NOT_TRUSTED}}))
            refused = await socket.receive()
            assert refused["type"] == "error" and refused["id"] == "1"
            assert [e["extensions"]["code"] for e in refused["payload"]] == ["TRUSTED_DOCUMENT_REQUIRED"]

            message = {"id": "2", "type": "subscribe", "payload": {"documentId": manifest[1]["Me"]}}
            await socket.ws.send(json.dumps(message))
            answer = await socket.receive()
            assert answer["type"] == "next" and answer["payload"]["data"]["me"]["id"] == ana["id"]

            unknown = {"id": "3", "type": "subscribe", "payload": {"documentId": "sha256:" + "1" * 64}}
            await socket.ws.send(json.dumps(unknown))
            missing = await socket.receive()
            while missing.get("id") != "3":  # the complete of id 2
                missing = await socket.receive()
            assert [e["extensions"]["code"] for e in missing["payload"]] == ["PERSISTED_QUERY_NOT_FOUND"]
        finally:
            await socket.close()
