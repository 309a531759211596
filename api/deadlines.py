"""Slow clients: a deadline for the request head, and the uvicorn options that bound
connections. (The body's deadline is the edge's, in api/edge.py.)

uvicorn times out idle kept-alive connections but not a request head that trickles in:
1,500 sockets that each sent half a header stayed open for as long as the clients
wished. This protocol closes a connection whose head is not complete within
LOYALTY_HEADER_TIMEOUT_SECONDS of its first byte being expected.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from domain.settings import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a timer from the connection (or, on a kept-alive
    connection, from the next request's first byte) until its headers are complete."""

    header_timeout: float = Settings.model_fields["header_timeout_seconds"].default

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `loyalty serve` gives uvicorn so that slow or numerous clients are bounded."""
    HeaderDeadlineProtocol.header_timeout = settings.header_timeout_seconds
    return {"http": HeaderDeadlineProtocol, "limit_concurrency": settings.max_connections}
