"""Slow and numerous clients are cut off: a request head that does not complete within
its deadline, a body that does not arrive within its own, and connections past the
cap, through a real uvicorn with the options `loyalty serve` gives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
import uvicorn

from api.app import create_app
from api.deadlines import HeaderDeadlineProtocol, uvicorn_options
from domain.settings import Settings
from tests.conftest import FIREBASE_PROJECT, TEST_SECRET

REQUEST = b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
QUERY = json.dumps({"query": "{ __typename }"}).encode()


@contextlib.asynccontextmanager
async def serving(database, tmp_path, **limits):
    settings = Settings(jwt_secret=TEST_SECRET, firebase_project_id=FIREBASE_PROJECT, home=tmp_path, **limits)
    app = create_app(settings, database=database, manage_orm=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **uvicorn_options(settings)
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with app.router.lifespan_context(app):
            while not server.started:
                await asyncio.sleep(0.01)
            yield port
    finally:
        server.should_exit = True
        await task
        HeaderDeadlineProtocol.header_timeout = Settings.model_fields["header_timeout_seconds"].default


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent before it closed the connection."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_half_a_header_is_cut_off_at_the_deadline(database, tmp_path):
    async with serving(database, tmp_path, header_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Le")
        await writer.drain()
        assert await _closed_within(reader, 3) == b""  # closed, nothing answered
        writer.close()

        # a connection that sends nothing at all is closed too
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed_within(reader, 3) == b""
        writer.close()


async def test_a_prompt_client_is_served_and_kept_alive_past_the_deadline(database, tmp_path):
    async with serving(database, tmp_path, header_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(REQUEST % len(QUERY) + QUERY)
            await writer.drain()
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            await reader.readuntil(b'{"data":{"__typename":"Query"}}')
            await asyncio.sleep(0.7)  # idle between requests: the keep-alive timeout's, not the head's
        # the next request's head is held to the deadline as well
        writer.write(b"POST /graphql HTTP/1.1\r\nHo")
        await writer.drain()
        assert await _closed_within(reader, 3) == b""
        writer.close()


async def test_a_body_that_does_not_arrive_gets_408(database, tmp_path):
    async with serving(database, tmp_path, body_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST % (len(QUERY) + 100) + QUERY)  # promises 100 bytes more than it sends
        await writer.drain()
        answer = await _closed_within(reader, 3)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"REQUEST_TIMEOUT" in answer
        writer.close()


async def test_connections_past_the_cap_get_503(database, tmp_path):
    async with serving(database, tmp_path, max_connections=3) as port:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST % len(QUERY) + QUERY)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 3)
        assert status.startswith(b"HTTP/1.1 503"), status
        for _, w in [*held, (reader, writer)]:
            w.close()
        await asyncio.sleep(0.1)
        # once they are gone, the server answers again
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST % len(QUERY) + QUERY)
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"HTTP/1.1 200")
        writer.close()


@pytest.mark.parametrize(
    ("setting", "value"), [("header_timeout_seconds", 0), ("body_timeout_seconds", -1), ("max_connections", 0)]
)
def test_nonsense_limits_are_refused(tmp_path, setting, value):
    with pytest.raises(ValueError, match=setting):
        Settings(jwt_secret=TEST_SECRET, home=tmp_path, **{setting: value})
