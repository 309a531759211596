"""A JSON request that is not JSON gets a JSON 400 with a code, before the GraphQL view
reads it: invalid UTF-8 (RFC 8259 requires UTF-8) and nesting so deep that the parser
recurses out of its stack would otherwise surface as a plain-text 500, and any other
malformed JSON as a plain-text 400.

The edge (api/edge.py) runs these checks once it has bounded the body (MAX_BODY_BYTES)
and tagged the request id. The same check covers a GET's `variables` and `extensions`
parameters."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Send


def problem(raw: bytes | str) -> tuple[str | None, Any]:
    """Why this is not a JSON document we read (or None), and the document. The parser
    is C; a document nested past the interpreter's recursion limit raises
    RecursionError, caught here."""
    try:
        return None, json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError:
        return "The request body is not UTF-8.", None
    except RecursionError:
        return "The JSON is nested too deeply.", None
    except ValueError:
        return "The request body is not valid JSON.", None


def query_problem(query_string: bytes) -> str | None:
    """Why a GET's `variables` or `extensions` parameter is not JSON, or None."""
    params = parse_qs(query_string.decode("latin-1"))
    for name in ("variables", "extensions"):
        for value in params.get(name, []):
            if (found := problem(value)[0]) is not None:
                return f"{name}: {found}"
    return None


async def refuse(send: Send, message: str) -> None:
    body = json.dumps({"errors": [{"message": message, "extensions": {"code": "INVALID_JSON"}}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
