"""What every request and socket meets first, in one ASGI layer (it was three: each
layer is a coroutine, closures and a wrapped `send` per request). In order:

1. the request id: the client's X-Request-Id if it is a plain token, else a new one;
   every answer carries it, every log line of the request too (api/logs.py);
2. over WebSocket: the open sockets counted (api/observability.py), nothing else;
3. bounds: a query string over MAX_QUERY_STRING_BYTES is 414, a body over
   MAX_BODY_BYTES 413, a body that does not arrive within the deadline 408 (with
   `Connection: close`), before anything parses them;
4. GraphQL requests timed by operation and outcome (api/observability.py), from here to
   the last byte out;
5. a JSON request that is not JSON gets a JSON 400 with a code (api/json_body.py), and
   the document parsed for that check is the one the GraphQL view reads (not parsed
   twice);
6. a GET or POST to /graphql goes straight to the GraphQL view, the route Starlette's
   router would pick, past the router's and the exception middleware's layers; the
   rest goes on through Starlette's stack.

Answers of a kilobyte and more travel gzip-compressed to clients that accept it:
Starlette's GZipMiddleware, outside all of the above as before, taken only by such
clients (answers under a kilobyte, such as `Me`'s, gain nothing from it)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any

from starlette._utils import get_route_path
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import json_body, logs
from api.observability import REQUESTS, SOCKETS, _Request, _request
from domain.settings import Settings

MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_STRING_BYTES = 16 * 1024
GZIP_MINIMUM_BYTES = 1024
# The media types Starlette's gzip leaves alone, normalised as it does (not its private helper).
_EXCLUDED = frozenset(t.partition(";")[0].strip().lower() for t in DEFAULT_EXCLUDED_CONTENT_TYPES)
_GRAPHQL_METHODS = ("GET", "POST")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# The body this request's JSON check parsed, and what it parsed to: the GraphQL view
# takes it from here instead of parsing the same bytes again.
parsed_body: ContextVar[tuple[bytes, Any] | None] = ContextVar("parsed_body", default=None)


def parsed(data: str | bytes) -> Any:
    """What the edge parsed `data` to, if it parsed these bytes (a fresh copy is not
    needed: nothing else holds it); else None."""
    remembered = parsed_body.get()
    if remembered is not None and remembered[0] == data:
        parsed_body.set(None)
        return remembered[1]
    return None


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        body_timeout: float = Settings.model_fields["body_timeout_seconds"].default,
        graphql_path: str = "/graphql",
        graphql: ASGIApp | None = None,
    ) -> None:
        self.app = app
        self.body_timeout = body_timeout
        self.graphql_path = graphql_path
        # The GraphQL view, which a GET or POST to graphql_path reaches straight from
        # here: the route the router would pick for it, without the router's and the
        # exception middleware's layers (the view answers its own errors).
        self.graphql = graphql
        self.compressing = GZipMiddleware(self._http, minimum_size=GZIP_MINIMUM_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if kind == "websocket":
            return await self._socket(scope, receive, send)
        # Starlette's own test for a client that takes gzip (a header on the request).
        for name, value in scope["headers"]:
            if name == b"accept-encoding":  # the first one, as Starlette reads it
                if b"gzip" in value:
                    return await self.compressing(scope, receive, send)
                break
        # Starlette's GZipMiddleware would pass other clients' answers through,
        # adding `Vary: Accept-Encoding` to those of a kilobyte and more.
        return await self._http(scope, receive, send, vary=True)

    def _to_graphql(self, scope: Scope) -> bool:
        return (
            self.graphql is not None
            and scope["method"] in _GRAPHQL_METHODS
            and get_route_path(scope) == self.graphql_path
        )

    @staticmethod
    def _request_id(scope: Scope) -> str:
        given = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                given = value  # the last one, as dict(headers) would keep
        given = given.decode("latin-1")
        # fullmatch: with match, `$` also accepts a trailing newline, which we would echo.
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        return request_id

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = logs.request_id.set(self._request_id(scope))
        SOCKETS.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            SOCKETS.dec()
        # Not reset when the app raises: the server logs that failure next, in this request's own task.
        logs.request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, vary: bool = False) -> None:
        request_id = self._request_id(scope)
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING_BYTES:
            return await _refuse(send, 414, f"The query string exceeds {MAX_QUERY_STRING_BYTES} bytes.", request_id)
        body = b""
        more = True
        try:
            async with asyncio.timeout(self.body_timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > MAX_BODY_BYTES:
                        message = f"The request body exceeds {MAX_BODY_BYTES} bytes."
                        return await _refuse(send, 413, message, request_id)
        except TimeoutError:
            message = f"The request body did not arrive within {self.body_timeout:g} s."
            return await _refuse(send, 408, message, request_id, code="REQUEST_TIMEOUT")

        token = logs.request_id.set(request_id)
        tag = request_id.encode()
        status = 500
        held: Message | None = None

        async def respond(message: Message) -> None:
            nonlocal status, held
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", tag)]
                if vary:  # held until the body shows its size
                    held = message
                    return
            elif held is not None:
                start, held = held, None
                if kind == "http.response.body" and _varies(start, message):
                    start["headers"].append((b"vary", b"Accept-Encoding"))
                await send(start)
            await send(message)

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        timed = scope["path"] == self.graphql_path
        if timed:
            record = _Request()
            reset = _request.set(record)
            started = time.perf_counter()
        try:
            if problem := _json_problem(scope, body):
                await json_body.refuse(respond, problem)
            elif (
                self.graphql is not None
                and scope["method"] in _GRAPHQL_METHODS
                and get_route_path(scope) == self.graphql_path
            ):
                await self.graphql(scope, replay, respond)
            else:
                await self.app(scope, replay, respond)
        finally:
            parsed_body.set(None)
            if timed:
                _request.reset(reset)
                if record.outcome is None:  # GraphQL never ran: a refused request (bad JSON, a batch) or GraphiQL
                    record.outcome = "ok" if status < 400 else f"HTTP_{status}"
                REQUESTS.labels(record.operation, record.outcome).observe(time.perf_counter() - started)
        # Not reset when the app raises: the server logs that failure next, in this request's own task.
        logs.request_id.reset(token)


def _json_problem(scope: Scope, body: bytes) -> str | None:
    """Why a JSON request is not JSON (a GET's `variables` and `extensions` included);
    a JSON body that is, is remembered for the view."""
    if scope["method"] == "GET":
        return json_body.query_problem(scope.get("query_string", b""))
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
    if b"json" not in content_type:
        return None
    problem, document = json_body.problem(body)
    if problem is None:
        parsed_body.set((body, document))
    return problem


def _varies(start: Message, body: Message) -> bool:
    """Whether Starlette's GZipMiddleware, for a client that does not take gzip, would
    add `Vary: Accept-Encoding` (its IdentityResponder's test): an answer not already
    encoded, not partial, of a type it would compress, streamed or of
    GZIP_MINIMUM_BYTES or more."""
    if start["status"] == 206:
        return False
    media_type = ""
    for name, value in start["headers"]:
        name = name.lower()
        if name == b"content-encoding":
            return False
        if name == b"content-type" and not media_type:
            media_type = value.decode("latin-1").partition(";")[0].strip().lower()
    media_types = {media_type, media_type.partition("/")[0] + "/*"}
    if media_type.startswith("application/grpc+"):
        media_types.add("application/grpc")
    if not media_types.isdisjoint(_EXCLUDED):
        return False
    return body.get("more_body", False) or len(body.get("body", b"")) >= GZIP_MINIMUM_BYTES


async def _refuse(send: Send, status: int, message: str, request_id: str, code: str = "REQUEST_TOO_LARGE") -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-request-id", request_id.encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
