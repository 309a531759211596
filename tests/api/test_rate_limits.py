"""Rate limits on the operations worth abusing and on anonymous traffic, per client
address and per token: over one, HTTP 429 with Retry-After and RATE_LIMITED, and the
operation does not run. The limits here are set tight; the defaults are generous."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn

from api.app import create_app
from domain.settings import ConfigurationError, Settings
from tests.conftest import (
    FIREBASE_PROJECT,
    OPS,
    REFRESH,
    SIGN_IN,
    TEST_SECRET,
    GraphQL,
    Socket,
    count,
    enroll,
    error_codes,
    id_token,
    member_uuid,
)

TIGHT = {
    "rate_sign_in": "3/minute",
    "rate_refresh": "1/minute",
    "rate_member_by_card": "1/minute",
    "rate_record_purchase": "2/minute",
    "rate_report_location": "1/minute",
    "rate_anonymous": "5/minute",
}


def _settings(tmp_path, **overrides) -> Settings:
    values = {"jwt_secret": TEST_SECRET, "firebase_project_id": FIREBASE_PROJECT, "home": tmp_path, **TIGHT}
    return Settings(**{**values, **overrides})


@pytest.fixture
async def tight(database, tmp_path):
    """An app with tight limits (its own counters), its lifespan running."""
    app = create_app(_settings(tmp_path), database=database, manage_orm=False)
    async with app.router.lifespan_context(app):
        yield app


def client_at(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://limited")


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


def _limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert error_codes(body) == ["RATE_LIMITED"], body
    assert body.get("data") is None


async def test_sign_in_is_limited_per_address(tight, database):
    async with client_at(tight, "10.0.0.1") as phone, client_at(tight, "10.0.0.2") as other:
        for i in range(3):
            response = await GraphQL(phone).raw(SIGN_IN, {"t": id_token(f"uid-{i}", email=f"m{i}@example.com")})
            assert response.status_code == 200 and response.json()["data"]["signInWithFirebase"]["accessToken"]
        _limited(await GraphQL(phone).raw(SIGN_IN, {"t": id_token("uid-9", email="m9@example.com")}))
        assert await count(database, "members") == 3  # the fourth did not enrol anyone
        # another address is counted apart
        response = await GraphQL(other).raw(SIGN_IN, {"t": id_token("uid-9", email="m9@example.com")})
        assert response.status_code == 200 and response.json()["data"]["signInWithFirebase"]["accessToken"]


async def test_purchases_are_limited_per_token_whatever_the_address(tight, tokens, database):
    async with client_at(tight, "10.0.1.1") as till, client_at(tight, "10.0.1.2") as elsewhere:
        ana = await enroll(GraphQL(till), tokens, "ana@example.com")
        staff = tokens.staff("till-7")

        def purchase(n: int) -> dict:
            return {
                "memberId": ana["id"],
                "externalId": f"R-{n}",
                "amount": "5.00",
                "currency": "EUR",
                "channel": "STORE",
            }

        for n, client in enumerate((till, elsewhere)):
            response = await GraphQL(client).raw(OPS["RecordPurchase"], purchase(n), token=staff)
            assert response.json()["data"]["recordPurchase"]["userErrors"] == []
        _limited(await GraphQL(elsewhere).raw(OPS["RecordPurchase"], purchase(3), token=staff))
        assert await count(database, "purchases") == 2
        # another till's token has its own count, from the same address
        other = await GraphQL(till).raw(OPS["RecordPurchase"], purchase(4), token=tokens.staff("till-8"))
        assert other.json()["data"]["recordPurchase"]["userErrors"] == []


async def test_aliases_count_one_each(tight, tokens):
    twice = '{ a: memberByCard(qrPayload: "x") { id } b: memberByCard(qrPayload: "y") { id } }'
    async with client_at(tight, "10.0.2.1") as client:
        _limited(await GraphQL(client).raw(twice, token=tokens.staff()))


CARD = 'query { memberByCard(qrPayload: "not-a-card") { id } }'
LOCATION = "mutation { reportLocation(input: { latitude: 1.0, longitude: 2.0 }) { userErrors { code } } }"


@pytest.mark.parametrize("field", ["memberByCard", "reportLocation", "refreshSession"])
async def test_each_limited_operation_answers_429_past_its_limit(tight, gql, tokens, field):
    async with client_at(tight, "10.0.3.1") as client:
        if field == "refreshSession":
            session = (await GraphQL(client).raw(SIGN_IN, {"t": id_token("uid-r", email="r@example.com")})).json()
            document, variables, token = REFRESH, {"r": session["data"]["signInWithFirebase"]["refreshToken"]}, None
        elif field == "memberByCard":
            document, variables, token = CARD, {}, tokens.staff()
        else:
            ana = await enroll(GraphQL(client), tokens, "ana@example.com")
            document, variables, token = LOCATION, {}, tokens.member(member_uuid(ana["id"]))
        first = await GraphQL(client).raw(document, variables, token=token)
        assert first.status_code == 200 and "RATE_LIMITED" not in first.text
        _limited(await GraphQL(client).raw(document, variables, token=token))


async def test_anonymous_traffic_is_limited_per_address(tight, tokens):
    async with client_at(tight, "10.0.4.1") as client:
        for _ in range(5):
            assert (await GraphQL(client).raw("{ __typename }")).status_code == 200
        _limited(await GraphQL(client).raw("{ __typename }"))
        # a signed-in caller from the same address is not anonymous traffic
        signed_in = await GraphQL(client).raw("{ program { name } }", token=tokens.staff())
        assert signed_in.status_code == 200 and "errors" not in signed_in.json()


async def test_the_default_limits_are_generous(client, gql, tokens):
    """The suite's own app (default settings): 50 card look-ups from one address pass."""
    for _ in range(50):
        result = await gql(CARD, token=tokens.staff())
        assert "RATE_LIMITED" not in str(result)


async def test_a_limited_operation_over_a_socket_is_refused_too(tight, tokens):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(tight, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        sock = await Socket.open(f"127.0.0.1:{port}", tokens.staff())
        await sock.subscribe(CARD)
        assert (await sock.receive())["type"] == "next"
        assert (await sock.receive())["type"] == "complete"
        await sock.subscribe(CARD)
        refused = await sock.receive()
        assert refused["type"] == "next", refused
        assert error_codes(refused["payload"]) == ["RATE_LIMITED"]
        assert refused["payload"]["data"] is None
        await sock.close()
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("setting", ["rate_sign_in", "rate_anonymous"])
def test_a_bad_limit_stops_the_start(tmp_path, setting):
    with pytest.raises(ConfigurationError, match="LOYALTY_RATE_"):
        create_app(_settings(tmp_path, **{setting: "lots per fortnight"}))


def test_an_unknown_storage_stops_the_start(tmp_path):
    with pytest.raises(ConfigurationError, match="LOYALTY_RATE_"):
        create_app(_settings(tmp_path, rate_storage="carrier-pigeon://loft"))
