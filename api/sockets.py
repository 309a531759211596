"""graphql-transport-ws with two checks strawberry's handler leaves to us.

- Every `subscribe` (a subscription, a query or a mutation sent over the socket) is
  authorised with the token as it is at that moment: an expired token or a signed-out
  session closes the socket with 4403 before anything runs. The token was checked at
  `connection_init`, but a socket lives for hours.
- A message that is not what the protocol says (a JSON array, `payload: null`, a
  number where a string belongs) closes the socket with 4400, instead of an exception
  that drops it without a close code.

The limits (tokens, depth, aliases, cost, rates) are the schema's, so they hold here
as over HTTP.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from domain import clock
from domain.identity import sessions

# Which members must be there and of what type, per message type (None: optional).
_OPTIONAL_DICT = (dict, type(None))
_OPTIONAL_STR = (str, type(None))
_SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    "connection_init": {"payload": _OPTIONAL_DICT},
    "ping": {"payload": _OPTIONAL_DICT},
    "pong": {"payload": _OPTIONAL_DICT},
    "subscribe": {"id": (str,), "payload": (dict,)},
    "complete": {"id": (str,)},
}
_SUBSCRIBE_PAYLOAD: dict[str, tuple[type, ...]] = {
    "query": _OPTIONAL_STR,  # absent when a trusted document is named instead
    "variables": _OPTIONAL_DICT,
    "operationName": _OPTIONAL_STR,
    "extensions": _OPTIONAL_DICT,
}


def malformed(message: Any) -> str | None:
    """Why the message is not a graphql-transport-ws message, or None."""
    if not isinstance(message, dict):
        return "A message must be a JSON object."
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in _SHAPES:
        return "Unknown message type."
    problem = _check(message, _SHAPES[kind], required=("id", "payload") if kind == "subscribe" else ("id",))
    if problem is None and kind == "subscribe":
        payload = message["payload"]
        extensions = payload.get("extensions")
        named = "documentId" in payload or (isinstance(extensions, dict) and "persistedQuery" in extensions)
        problem = _check(payload, _SUBSCRIBE_PAYLOAD, required=() if named else ("query",), where="payload.")
    return problem


def _check(obj: dict, shape: dict[str, tuple[type, ...]], required: tuple[str, ...], where: str = "") -> str | None:
    for name, types in shape.items():
        if name not in obj:
            if name in required:
                return f"'{where}{name}' is missing."
            continue
        if not isinstance(obj[name], types) or (types == (str,) and not obj[name]):
            return f"'{where}{name}' has the wrong type."
    return None


class GuardedTransportWS(BaseGraphQLTransportWSHandler):
    async def handle_message(self, message: Any) -> None:
        problem = malformed(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: Any) -> None:
        if self.connection_acknowledged and not await authorised(self.context):
            await self.websocket.close(code=4403, reason="Forbidden: the token expired or its session ended")
            return
        if self.connection_acknowledged and message["id"] not in self.operations:
            payload = message["payload"]
            principal = self.context.principal()
            chosen = self.context.services.documents.choose(
                payload.get("query"),
                payload.get("documentId"),
                payload.get("extensions"),
                principal.role if principal else None,
            )
            if isinstance(chosen, GraphQLError):
                await self.send_message({"id": message["id"], "type": "error", "payload": [chosen.formatted]})
                return
            message = {**message, "payload": {**payload, "query": chosen.query}}
        await super().handle_subscribe(message)


async def authorised(context: Any) -> bool:
    """A token that is valid now: signed, not expired, its session not signed out."""
    principal = context.principal()
    if principal is None or principal.expires_at <= clock.now():
        return False
    return principal.session is None or not await sessions.is_revoked(principal.session)
