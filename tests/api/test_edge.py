"""The GraphQL edge: what the HTTP layer accepts (no batching, no mutations over GET),
what production hides (GraphiQL, introspection) and refuses to start with, request
ids, masked unexpected errors, health and readiness."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

import httpx
import pytest
import strawberry

from api.app import create_app
from api.errors import Forbidden, MaskUnexpectedErrors
from domain.errors import InvalidInput
from domain.identity.tokens import Role, TokenIssuer
from domain.settings import ConfigurationError
from tests.conftest import INTROSPECTION, PRODUCTION_SECRET, count, enroll, member_uuid, production_settings

ENROLL = 'mutation { enrollMember(input: { email: "%s" }) { member { id } userErrors { code } } }'
FRESH_ID = re.compile(r"^[0-9a-f]{32}$")


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# -- batching and GET ----------------------------------------------------------


async def test_batched_requests_are_refused_and_run_nothing(client, tokens, database):
    batch = [{"query": ENROLL % "a@example.com"}, {"query": ENROLL % "b@example.com"}]
    response = await client.post("/graphql", json=batch, headers=_bearer(tokens.staff()))
    assert response.status_code == 400
    assert await count(database, "members") == 0
    # the same mutation alone goes through: it was the batch that was refused
    single = await client.post("/graphql", json=batch[0], headers=_bearer(tokens.staff()))
    assert single.json()["data"]["enrollMember"]["userErrors"] == []
    assert await count(database, "members") == 1


async def test_queries_work_over_get(client, gql, tokens):
    member = await enroll(gql, tokens, "ana@example.com")
    response = await client.get(
        "/graphql", params={"query": "{ me { email } }"}, headers=_bearer(tokens.member(member_uuid(member["id"])))
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"email": "ana@example.com"}}}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"query": ENROLL % "get@example.com"}, id="a mutation"),
        pytest.param(
            {
                "query": "query Q { __typename } " + ENROLL.replace("mutation", "mutation M", 1) % "get@example.com",
                "operationName": "M",
            },
            id="the mutation of a document that also has a query",
        ),
    ],
)
async def test_mutations_are_refused_over_get(client, tokens, database, params):
    response = await client.get("/graphql", params=params, headers=_bearer(tokens.staff()))
    assert response.status_code in (400, 405), response.text
    assert "mutation" in response.text.lower()
    assert await count(database, "members") == 0


# -- production ----------------------------------------------------------------


async def test_production_does_not_serve_graphiql(production):
    page = await production.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "graphiql" not in page.text.lower() and "<html" not in page.text.lower()
    assert (await production.get("/graphiql/graphiql@3.8.3/graphiql.min.js")).status_code == 404


async def test_development_serves_graphiql(client):
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()


async def test_production_refuses_introspection_but_answers_queries(production):
    refused = (await production.post("/graphql", json={"query": INTROSPECTION})).json()
    assert refused.get("data") is None
    assert "introspection has been disabled" in refused["errors"][0]["message"]

    # the app itself works: a staff token signed with the production key is served
    token = TokenIssuer(PRODUCTION_SECRET.encode()).mint(Role.STAFF, "till-1")[0]
    answered = await production.post("/graphql", json={"query": "{ program { name } }"}, headers=_bearer(token))
    assert answered.status_code == 200 and answered.json()["data"]["program"]["name"]


async def test_development_allows_introspection(client):
    result = (await client.post("/graphql", json={"query": INTROSPECTION})).json()
    assert "errors" not in result
    assert "Member" in {t["name"] for t in result["data"]["__schema"]["types"]}


@pytest.mark.parametrize(
    ("overrides", "emulator", "message"),
    [
        pytest.param({}, "127.0.0.1:9099", "FIREBASE_AUTH_EMULATOR_HOST", id="auth emulator set"),
        pytest.param({"jwt_secret": None}, None, "LOYALTY_JWT_SECRET", id="no jwt secret"),
        pytest.param({"jwt_secret": "s" * 31}, None, "LOYALTY_JWT_SECRET", id="31-char jwt secret"),
        pytest.param({"database_url": None}, None, "LOYALTY_DATABASE_URL", id="no database url"),
        pytest.param({"program": None}, None, "LOYALTY_PROGRAM must be set in production", id="no program file"),
    ],
)
def test_production_refuses_unsafe_configuration(monkeypatch, tmp_path, overrides, emulator, message):
    if emulator:
        monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", emulator)
    else:
        monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    with pytest.raises(ConfigurationError, match=message):
        create_app(production_settings(tmp_path, **overrides))


def test_safe_configurations_start(monkeypatch, tmp_path):
    """The refusals above are about the setting they name: just enough is accepted."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    assert create_app(production_settings(tmp_path, jwt_secret="s" * 32)) is not None
    # development signs in against the emulator (the tests do) and may keep no secret
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert create_app(production_settings(tmp_path, env="development", jwt_secret=None, database_url=None)) is not None


# -- request ids -----------------------------------------------------------------

REQUESTS = {
    "healthz": ("GET", "/healthz", {}),
    "readyz": ("GET", "/readyz", {}),
    "graphql POST": ("POST", "/graphql", {"json": {"query": "{ __typename }"}}),
    "graphql GET": ("GET", "/graphql", {"params": {"query": "{ __typename }"}}),
    "a GraphQL error": ("POST", "/graphql", {"json": {"query": "{ me { id } }"}}),
    "a batch (400)": ("POST", "/graphql", {"json": [{"query": "{ __typename }"}]}),
    "too large (413)": ("POST", "/graphql", {"json": {"query": "{ __typename }", "variables": {"x": "a" * 70_000}}}),
    "query string too long (414)": ("GET", "/graphql", {"params": {"query": "{ __typename }" + " " * 17_000}}),
    "unknown path (404)": ("GET", "/nowhere", {}),
}


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_every_response_carries_a_request_id(client, name):
    method, path, options = REQUESTS[name]
    first = await client.request(method, path, **options)
    second = await client.request(method, path, **options)
    assert FRESH_ID.fullmatch(first.headers.get("x-request-id", "")), first.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("given", ["pos-1234", "till-7.req_42", "A" * 64])
@pytest.mark.parametrize("name", ["healthz", "graphql POST", "too large (413)"])
async def test_a_valid_request_id_is_echoed(client, given, name):
    method, path, options = REQUESTS[name]
    response = await client.request(method, path, headers={"X-Request-Id": given}, **options)
    assert response.headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    ["bad id with spaces", "x" * 200, "A" * 65, "", "a/b", "id;drop", "new\tline", "trailing-newline\n", "ünïcödé"],
)
async def test_an_invalid_request_id_is_replaced(client, given):
    for response in (
        await client.get("/healthz", headers={"X-Request-Id": given.encode("latin-1")}),
        await client.post("/graphql", content=b"x" * 70_000, headers={"X-Request-Id": given.encode("latin-1")}),
    ):
        assert response.headers["x-request-id"] != given
        assert FRESH_ID.fullmatch(response.headers["x-request-id"])


# -- masked errors -----------------------------------------------------------------


@strawberry.type
class _Query:
    @strawberry.field
    def boom(self) -> str | None:
        raise RuntimeError("secret detail: the database password is hunter2")

    @strawberry.field
    def forbidden(self) -> str | None:
        raise Forbidden("This needs a staff token; yours is a member token.")

    @strawberry.field
    def invalid(self) -> str | None:
        raise InvalidInput("first must be between 1 and 100.", field="first")


_SCHEMA = strawberry.Schema(query=_Query, extensions=[MaskUnexpectedErrors])


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(caplog):
    with caplog.at_level(logging.ERROR, logger="loyalty.api"):
        result = await _SCHEMA.execute("{ boom }", context_value=SimpleNamespace(request_id="req-42"))
    assert result.data == {"boom": None}
    (error,) = result.errors
    assert error.message == "Unexpected error."
    assert error.extensions == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert "secret detail" not in json.dumps(error.formatted)
    assert "hunter2" not in json.dumps(error.formatted)
    # the operator sees what the client does not, and can find it by the request id
    (record,) = [r for r in caplog.records if r.name == "loyalty.api"]
    assert record.levelno == logging.ERROR
    assert "req-42" in record.getMessage()
    assert "secret detail" in caplog.text and "RuntimeError" in caplog.text


@pytest.mark.parametrize(
    ("field", "code", "message"),
    [
        ("forbidden", "FORBIDDEN", "This needs a staff token; yours is a member token."),
        ("invalid", "INVALID_INPUT", "first must be between 1 and 100."),
    ],
)
async def test_expected_errors_keep_their_message_and_code(caplog, field, code, message):
    with caplog.at_level(logging.ERROR, logger="loyalty.api"):
        result = await _SCHEMA.execute(f"{{ {field} }}", context_value=SimpleNamespace(request_id="req-43"))
    (error,) = result.errors
    assert error.message == message
    assert error.extensions == {"code": code}
    assert not [r for r in caplog.records if r.name == "loyalty.api"]  # the client's mistake, not ours


# -- health and readiness ---------------------------------------------------------------


async def test_healthz_answers(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.text == "ok"


async def test_readyz_is_ready_once_started(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True}


async def test_readyz_is_not_ready_before_startup(database, settings):
    app = create_app(settings)  # its lifespan has not run
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://starting") as c:
        response = await c.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"ready": False, "reason": "starting"}
        assert (await c.get("/healthz")).status_code == 200  # alive, just not ready
