"""A JSON request that is not JSON gets a JSON 400 with a code, before the GraphQL view
reads it: invalid UTF-8 (RFC 8259 requires UTF-8) and nesting so deep that the parser
recurses out of its stack would otherwise surface as a plain-text 500, and any other
malformed JSON as a plain-text 400.

It sits inside EdgeGuard, which has already bounded the body (MAX_BODY_BYTES) and tagged
the request id. The same check covers a GET's `variables` and `extensions` parameters."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _problem(raw: bytes | str) -> str | None:
    """Why this is not a JSON document we read, or None. The parser is C; a document
    nested past the interpreter's recursion limit raises RecursionError, caught here."""
    try:
        json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError:
        return "The request body is not UTF-8."
    except RecursionError:
        return "The JSON is nested too deeply."
    except ValueError:
        return "The request body is not valid JSON."
    return None


class JsonBodyCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if scope["method"] == "GET":
            params = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            for name in ("variables", "extensions"):
                for value in params.get(name, []):
                    if problem := _problem(value):
                        return await _refuse(send, f"{name}: {problem}")
            return await self.app(scope, receive, send)
        if b"json" not in headers.get(b"content-type", b""):
            return await self.app(scope, receive, send)

        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return await self.app(scope, _replay(messages, receive), send)
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if problem := _problem(body):
            return await _refuse(send, problem)
        await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": "INVALID_JSON"}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
