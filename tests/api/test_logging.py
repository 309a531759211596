"""--log-format json: every line is one JSON object, and every line logged while a
request is served carries that request's id, whichever logger wrote it."""

from __future__ import annotations

import io
import json
import logging

import pytest

from api import logs
from tests.conftest import OPS, enroll

FIELDS = {"time", "level", "logger", "message", "request_id"}


@pytest.fixture
def json_lines():
    """The JSON handler `--log-format json` installs, on the root logger, into a buffer;
    with our client-error lines and the ORM's query lines switched on (DEBUG)."""
    buffer = io.StringIO()
    handler = logs.json_handler(buffer)
    root = logging.getLogger()
    watched = {name: logging.getLogger(name) for name in ("loyalty.api", "tortoise.db_client")}
    levels = {name: logger.level for name, logger in watched.items()}
    root.addHandler(handler)
    for logger in watched.values():
        logger.setLevel(logging.DEBUG)

    def read() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    root.removeHandler(handler)
    for name, logger in watched.items():
        logger.setLevel(levels[name])


async def test_each_line_carries_the_id_of_the_request_that_caused_it(client, gql, tokens, json_lines):
    ana = await enroll(gql, tokens, "ana@example.com")
    staff = {"Authorization": f"Bearer {tokens.staff()}"}
    variables = {"memberId": ana["id"], "externalId": "J-1", "amount": "2.00", "currency": "EUR", "channel": "STORE"}
    start = len(json_lines())

    body = {"query": OPS["RecordPurchase"], "variables": variables}
    denied = await client.post("/graphql", json=body, headers={"X-Request-Id": "req-denied"})
    assert denied.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    recorded = await client.post(
        "/graphql",
        json=body,
        headers={**staff, "X-Request-Id": "req-recorded"},
    )
    assert recorded.json()["data"]["recordPurchase"]["userErrors"] == []
    logging.getLogger("loyalty.api").info("between requests")

    lines = json_lines()[start:]
    for line in lines:
        assert FIELDS <= set(line), line
    by_request: dict = {}
    for line in lines:
        by_request.setdefault(line["request_id"], []).append(line)
    assert set(by_request) == {"req-denied", "req-recorded", None}
    # the refused purchase: our client-error line; the recorded one: the ORM's statements
    assert any(
        line["logger"] == "loyalty.api" and "access token" in line["message"] for line in by_request["req-denied"]
    )
    assert not any(line["logger"] == "tortoise.db_client" for line in by_request["req-denied"])
    assert any(
        line["logger"] == "tortoise.db_client" and "INSERT INTO" in line["message"]
        for line in by_request["req-recorded"]
    )
    assert [line["message"] for line in by_request[None]] == ["between requests"]
    assert all(line["level"] in {"DEBUG", "INFO"} for line in lines)


async def test_a_fresh_id_is_given_and_logged_when_the_client_sends_none(client, json_lines):
    start = len(json_lines())
    response = await client.post("/graphql", json={"query": "query Broken {"})
    given = response.headers["x-request-id"]
    lines = json_lines()[start:]
    assert lines and all(line["request_id"] == given for line in lines)
