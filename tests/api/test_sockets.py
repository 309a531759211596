"""A WebSocket is authorised at every operation, not once: an expired token or a
signed-out session closes it (4403) before anything runs. Malformed messages close it
with 4400. Documents sent over it meet the same limits as over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import websockets

from api.schema import MAX_TOKENS
from domain import clock
from tests.conftest import OPS, REFRESH, SIGN_IN, SIGN_OUT, Socket, count, enroll, error_codes, id_token, member_uuid

ME = "{ me { id } }"
BOMB = "{ " + "me { id } " * 490 + "}"


@pytest.fixture
async def ana(gql, tokens) -> dict:
    member = await enroll(gql, tokens, "ana@example.com")
    return {**member, "token": tokens.member(member_uuid(member["id"]))}


def _adjust(member_id: str, key: str) -> dict:
    return {"memberId": member_id, "points": 777, "reason": "goodwill", "idempotencyKey": key}


async def _closed_with(sock: Socket) -> int:
    """The close code, once what was sent before has been read; nothing new may arrive."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            message = await sock.receive(timeout=2)
            assert message["type"] == "complete", message  # the end of an earlier operation
    return closed.value.rcvd.code


async def _answer(sock: Socket) -> dict:
    """The next result, and the `complete` that follows it."""
    message = await sock.receive()
    assert message["type"] == "next", message
    assert (await sock.receive())["type"] == "complete"
    return message["payload"]


async def test_a_staff_token_that_expires_on_an_open_socket_runs_nothing(live_server, tokens, ana, database):
    sock = await Socket.open(live_server, tokens.staff())
    await sock.subscribe(OPS["AdjustPoints"], _adjust(ana["id"], "while-valid"))
    done = await _answer(sock)
    assert done["data"]["adjustPoints"]["userErrors"] == [], done
    entries = await count(database, "ledger_entries")

    clock.advance(timedelta(hours=1))  # past the staff token's 15 minutes, the socket still open
    await sock.subscribe(OPS["AdjustPoints"], _adjust(ana["id"], "after-expiry"))
    assert await _closed_with(sock) == 4403
    assert await count(database, "ledger_entries") == entries  # no ADJUST written


@pytest.fixture
def emulator(monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


@pytest.mark.usefixtures("emulator")
async def test_a_signed_out_session_closes_the_socket_at_its_next_operation(live_server, gql, database):
    session = (await gql(SIGN_IN, {"t": id_token("uid-ana", email="ana@example.com")}))["data"]["signInWithFirebase"]
    sock = await Socket.open(live_server, session["accessToken"])
    await sock.subscribe(ME)
    assert (await _answer(sock))["data"]["me"]["id"] == session["member"]["id"]

    signed_out = await gql(SIGN_OUT, {"r": session["refreshToken"]})
    assert signed_out["data"]["signOut"]["userErrors"] == []
    await sock.subscribe('mutation { updateProfile(input: { displayName: "Mallory" }) { member { id } } }')
    assert await _closed_with(sock) == 4403
    me = await gql("{ me { displayName } }", token=session["accessToken"])  # over HTTP: still valid until it expires
    assert me["data"]["me"]["displayName"] is None  # the profile was not changed

    # a new socket with the signed-out session's token is refused at connection_init
    again = await Socket.open(live_server, None, init=False)
    await again.ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {session['accessToken']}"}})
    )
    assert await _closed_with(again) == 4403


@pytest.mark.usefixtures("emulator")
async def test_a_refreshed_session_keeps_its_socket(live_server, gql):
    """The check is about the session, not the token's age: a refresh continues it."""
    session = (await gql(SIGN_IN, {"t": id_token("uid-bo", email="bo@example.com")}))["data"]["signInWithFirebase"]
    refreshed = (await gql(REFRESH, {"r": session["refreshToken"]}))["data"]["refreshSession"]
    sock = await Socket.open(live_server, refreshed["accessToken"])
    await sock.subscribe(ME)
    assert (await _answer(sock))["data"]["me"]["id"] == session["member"]["id"]
    await sock.close()


MALFORMED = {
    "a JSON array": [1, 2],
    "a JSON string": "subscribe",
    "payload null": {"id": "1", "type": "subscribe", "payload": None},
    "no payload": {"id": "1", "type": "subscribe"},
    "a numeric id": {"id": 1, "type": "subscribe", "payload": {"query": ME}},
    "a query that is a list": {"id": "1", "type": "subscribe", "payload": {"query": [ME]}},
    "variables that are a list": {"id": "1", "type": "subscribe", "payload": {"query": ME, "variables": [1]}},
    "an operationName that is a number": {"id": "1", "type": "subscribe", "payload": {"query": ME, "operationName": 7}},
    "a numeric type": {"type": 5},
    "complete without an id": {"type": "complete"},
    "ping with a list payload": {"type": "ping", "payload": []},
}


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_a_malformed_message_closes_the_socket_with_4400(live_server, ana, name):
    sock = await Socket.open(live_server, ana["token"])
    await sock.ws.send(json.dumps(MALFORMED[name]))
    assert await _closed_with(sock) == 4400


async def test_a_well_formed_message_on_the_same_socket_is_answered(live_server, ana):
    """The refusals above are about the message: the socket itself works."""
    sock = await Socket.open(live_server, ana["token"])
    await sock.ws.send(json.dumps({"type": "ping", "payload": None}))
    assert (await sock.receive())["type"] == "pong"
    await sock.subscribe(ME)
    assert (await _answer(sock))["data"]["me"]["id"] == ana["id"]
    await sock.close()


SOCKET_LIMITS = {
    "490 identical fields": (BOMB, "QUERY_TOO_COMPLEX"),
    "30 aliases x 100 members x 100 entries": (
        "{ "
        + " ".join(
            f"a{i}: members(first: 100) {{ edges {{ node {{ wallets {{ entries(first: 100) "
            "{ edges { node { id amount } } } } } } }"
            for i in range(30)
        )
        + " }",
        "QUERY_TOO_COMPLEX",
    ),
    "31 aliases": ("{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }", "GRAPHQL_VALIDATION_FAILED"),
}


@pytest.mark.parametrize("name", list(SOCKET_LIMITS))
async def test_documents_over_a_socket_meet_the_http_limits(live_server, tokens, ana, name):
    document, code = SOCKET_LIMITS[name]
    sock = await Socket.open(live_server, tokens.staff() if "members" in document else ana["token"])
    await sock.subscribe(document)
    answer = await sock.receive()
    assert answer["type"] == "error", answer
    assert error_codes({"errors": answer["payload"]}) == [code], answer
    await sock.subscribe("{ __typename }")  # the socket is still usable
    assert (await _answer(sock))["data"] == {"__typename": "Query"}
    await sock.close()


async def test_a_document_over_the_token_limit_closes_the_socket(live_server, ana):
    """graphql-transport-ws closes on a document that does not parse (4400); past the
    token limit, parsing stops there."""
    sock = await Socket.open(live_server, ana["token"])
    await sock.subscribe("{ me { " + "id " * MAX_TOKENS + "} }")
    assert await _closed_with(sock) == 4400
