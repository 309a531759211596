"""The per-request context: who is asking (decoded once) and the process's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from api.loaders import Loaders
from domain.errors import InvalidCredentials
from domain.identity.tokens import Principal

if TYPE_CHECKING:
    from api.services import Services


@dataclass
class Context:
    services: Services
    authorization: str | None
    request_id: str
    # Over WebSocket: the graphql-transport-ws connection_init payload, and the socket.
    connection_params: dict | None = None
    websocket: Any = None
    # The client's address (rate limits count per address), and over HTTP the response
    # whose status and headers the rate limits set (429, Retry-After).
    client: str | None = None
    response: Any = None
    _loaders: Loaders | None = field(default=None, init=False)
    _principal: Principal | None = field(default=None, init=False)
    _auth_error: str | None = field(default=None, init=False)
    _decoded: bool = field(default=False, init=False)

    @property
    def loaders(self) -> Loaders:
        # Made on first use: a WebSocket's context lives as long as the socket.
        if self._loaders is None:
            self._loaders = Loaders()
        return self._loaders

    def principal(self) -> Principal | None:
        """The caller, or None without a token. A bad token leaves `auth_error` set."""
        if not self._decoded:
            self._decoded = True
            self._principal, self._auth_error = self._decode()
        return self._principal

    @property
    def auth_error(self) -> str | None:
        self.principal()
        return self._auth_error

    def _decode(self) -> tuple[Principal | None, str | None]:
        authorization = self.authorization
        if not authorization and isinstance(self.connection_params, dict):
            given = self.connection_params.get("authorization") or self.connection_params.get("Authorization")
            authorization = given if isinstance(given, str) else None
        if not authorization:
            return None, "Sign in: this needs an access token."
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "Send the access token as 'Authorization: Bearer <token>'."
        try:
            return self.services.verified.verify(token.strip()), None
        except InvalidCredentials as exc:
            return None, exc.message
