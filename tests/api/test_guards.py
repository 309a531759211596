"""The GraphQL edge under bad input: forged and expired tokens, wrong roles, other
members' objects, malformed IDs, hostile documents. A precise error, nothing
written, and the server keeps answering."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta

import jwt
import pytest
import strawberry

from api.app import create_app
from api.errors import MaskUnexpectedErrors
from domain.identity.tokens import AUDIENCE, ISSUER, Role, TokenIssuer
from domain.settings import ConfigurationError, Settings
from tests.conftest import TEST_SECRET, count, enroll, error_codes, member_uuid

ENROLL = "mutation($e: String!) { enrollMember(input: {email: $e}) { member { id } userErrors { code } } }"
ME = "{ me { id email } }"


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**override) -> dict:
    import time

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "till-1", "role": "staff", "iat": now, "exp": now + 600}
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def bad_tokens() -> dict[str, str]:
    return {
        "expired": TokenIssuer(TEST_SECRET.encode()).mint(Role.STAFF, "till-1", ttl=timedelta(seconds=-5))[0],
        "another key": TokenIssuer(b"another-key-" + b"z" * 40).mint(Role.STAFF, "till-1")[0],
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "HS512 with our key": jwt.encode(_claims(), TEST_SECRET, algorithm="HS512"),
        "no exp": jwt.encode(_claims(exp=None), TEST_SECRET, algorithm="HS256"),
        "no role": jwt.encode(_claims(role=None), TEST_SECRET, algorithm="HS256"),
        "unknown role": jwt.encode(_claims(role="admin"), TEST_SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), TEST_SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(iss="evil"), TEST_SECRET, algorithm="HS256"),
        "member sub not a uuid": jwt.encode(_claims(role="member", sub="nobody"), TEST_SECRET, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize("name", list(bad_tokens()))
async def test_bad_tokens_are_unauthenticated_and_write_nothing(client, gql, database, name):
    token = bad_tokens()[name]
    result = await gql(ENROLL, {"e": "x@example.com"}, token=token)
    assert result.get("data") is None
    assert error_codes(result) == ["UNAUTHENTICATED"], name
    assert await count(database, "members") == 0
    assert (await client.get("/healthz")).status_code == 200


async def test_no_token_and_other_schemes_are_unauthenticated(client, gql, database):
    assert error_codes(await gql(ENROLL, {"e": "x@example.com"})) == ["UNAUTHENTICATED"]
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]
    assert await count(database, "members") == 0


async def test_wrong_roles_are_forbidden(gql, tokens, database):
    member = await enroll(gql, tokens, "ana@example.com")
    ana = tokens.member(member_uuid(member["id"]))
    assert error_codes(await gql(ENROLL, {"e": "b@example.com"}, token=ana)) == ["FORBIDDEN"]
    assert error_codes(await gql(ENROLL, {"e": "b@example.com"}, token=tokens.marketer())) == ["FORBIDDEN"]
    assert error_codes(await gql(ME, token=tokens.staff())) == ["FORBIDDEN"]
    assert error_codes(await gql("{ memberCard { qrPayload } }", token=tokens.marketer())) == ["FORBIDDEN"]
    lookup = await gql('query { memberByCard(qrPayload: "x") { id } }', token=ana)
    assert error_codes(lookup) == ["FORBIDDEN"]
    assert await count(database, "members") == 1


async def test_a_member_never_reaches_another_member_through_node(gql, tokens):
    a = await enroll(gql, tokens, "ana@example.com")
    b = await enroll(gql, tokens, "bo@example.com")
    query = "query($id: ID!) { node(id: $id) { id ... on Member { email } } }"
    ana = tokens.member(member_uuid(a["id"]))
    assert (await gql(query, {"id": b["id"]}, token=ana))["data"]["node"] is None
    assert (await gql(query, {"id": a["id"]}, token=ana))["data"]["node"]["email"] == "ana@example.com"
    assert (await gql(query, {"id": b["id"]}, token=tokens.staff()))["data"]["node"]["email"] == "bo@example.com"


@pytest.mark.parametrize(
    "global_id",
    ["!!!", "", _b64(b"Member"), _b64(b"Member:not-a-uuid"), _b64(b"Nope:1"), "x" * 10_000, _b64(b"\xff\xfe")],
)
async def test_malformed_global_ids_are_precise(gql, tokens, global_id):
    result = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": global_id}, token=tokens.staff())
    if result.get("errors"):
        assert error_codes(result) == ["INVALID_INPUT"], result
    else:
        assert result["data"]["node"] is None
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(result)


async def test_a_megabyte_string_is_refused_before_parsing(client, tokens, database):
    body = {"query": ENROLL, "variables": {"e": "a" * 1_000_000 + "@example.com"}}
    response = await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {tokens.staff()}"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert await count(database, "members") == 0
    assert (await client.get("/healthz")).status_code == 200


async def test_deep_wide_and_long_documents_are_refused(gql, tokens):
    deep = "{ me { " + "tier { current { " * 15 + "name" + " } }" * 15 + " } }"
    result = await gql(deep, token=tokens.staff())
    assert result.get("data") is None and "depth" in result["errors"][0]["message"]

    aliases = "{ " + " ".join(f"a{i}: program {{ name }}" for i in range(100)) + " }"
    result = await gql(aliases, token=tokens.staff())
    assert result.get("data") is None and "aliases" in result["errors"][0]["message"].lower()

    five_hundred = "{ " + " ".join(f"a{i}: __typename" for i in range(500)) + " }"
    result = await gql(five_hundred, token=tokens.staff())
    assert result.get("data") is None
    assert any(w in result["errors"][0]["message"].lower() for w in ("aliases", "tokens"))

    long = "{ " + " ".join("__typename" for _ in range(3000)) + " }"
    result = await gql(long, token=tokens.staff())
    assert result.get("data") is None and "token" in result["errors"][0]["message"].lower()

    # and the server answers a normal request afterwards
    assert (await gql("{ program { name } }", token=tokens.staff()))["data"]["program"]["name"]


async def test_batching_is_off_and_get_serves_queries_only(client, tokens, database):
    headers = {"Authorization": f"Bearer {tokens.staff()}"}
    batch = await client.post("/graphql", json=[{"query": "{ program { name } }"}] * 2, headers=headers)
    assert batch.status_code == 400
    got = await client.get("/graphql", params={"query": "{ program { name } }"}, headers=headers)
    assert got.status_code == 200 and got.json()["data"]["program"]["name"]
    mutation = await client.get(
        "/graphql",
        params={"query": 'mutation { enrollMember(input: {email: "g@e.co"}) { member { id } } }'},
        headers=headers,
    )
    assert mutation.status_code in (400, 405)
    assert await count(database, "members") == 0


async def test_request_ids_tag_every_response(client):
    own = await client.get("/healthz", headers={"X-Request-Id": "pos-1234"})
    assert own.headers["x-request-id"] == "pos-1234"
    hostile = await client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert hostile.headers["x-request-id"] != "bad id with spaces" and len(hostile.headers["x-request-id"]) == 32


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(caplog):
    @strawberry.type
    class Query:
        @strawberry.field
        def boom(self) -> str:
            raise RuntimeError("secret detail: the database password is hunter2")

    schema = strawberry.Schema(query=Query, extensions=[MaskUnexpectedErrors])

    class Ctx:
        request_id = "req-42"

    with caplog.at_level(logging.ERROR, logger="loyalty.api"):
        result = await schema.execute("{ boom }", context_value=Ctx())
    (error,) = result.errors
    assert error.message == "Unexpected error."
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert "hunter2" not in json.dumps(error.formatted)
    assert "req-42" in caplog.text and "hunter2" in caplog.text


async def test_production_hides_graphiql_and_introspection(database, tmp_path):
    settings = Settings(
        env="production",
        jwt_secret="p" * 40,
        database_url="postgres://unused@127.0.0.1/x",
        firebase_project_id="demo-loyalty",
        home=tmp_path,
    )
    app = create_app(settings, database=database, manage_orm=False)
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://prod") as c:
            page = await c.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in page.text.lower()
            token = TokenIssuer(b"p" * 40).mint(Role.STAFF, "till")[0]
            intro = await c.post(
                "/graphql",
                json={"query": "{ __schema { types { name } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert "introspection" in json.dumps(intro.json()).lower()
            assert intro.json().get("data") is None


async def test_development_serves_graphiql(client):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        ({"jwt_secret": None}, {}, "LOYALTY_JWT_SECRET"),
        ({"jwt_secret": "short"}, {}, "LOYALTY_JWT_SECRET"),
        ({"database_url": None}, {}, "LOYALTY_DATABASE_URL"),
        ({}, {"FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"}, "FIREBASE_AUTH_EMULATOR_HOST"),
    ],
)
def test_production_refuses_unsafe_configuration(monkeypatch, tmp_path, overrides, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    base = {"env": "production", "jwt_secret": "p" * 40, "database_url": "postgres://u@h/d", "home": tmp_path}
    base.update(overrides)
    with pytest.raises(ConfigurationError, match=message):
        create_app(Settings(**base))
