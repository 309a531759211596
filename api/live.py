"""Live updates across processes: one LISTEN connection per API process.

A committed outbox row NOTIFYs `loyalty_events` with "member:event id" (the trigger
in migration 0003). The listener wakes that member's local subscribers; they read
what is new from the database after their own cursor. Nothing is kept per event in
memory, so a slow phone costs its cursor and a small bounded queue, nothing more.
If the listening connection drops, every subscriber is woken on reconnect and
catches up from its cursor: nothing committed in between is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg

from domain import db

log = logging.getLogger("loyalty.live")

CHANNEL = "loyalty_events"
LISTENER_NAME = "loyalty-live"
QUEUE_LIMIT = 256  # pending wake-ups per subscription before it is told it fell behind
HEALTH_CHECK_SECONDS = 5.0


class Subscription:
    """One live subscription's inbox of wake-ups (event ids), bounded."""

    def __init__(self, member_id: uuid.UUID) -> None:
        self.member_id = member_id
        self.queue: asyncio.Queue[int] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        self.overflowed = False

    def wake(self, event_id: int) -> None:
        try:
            self.queue.put_nowait(event_id)
        except asyncio.QueueFull:
            self.overflowed = True

    async def wait(self, timeout: float) -> None:
        """Until something new may be there (or the timeout); drains the wake-ups."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.get(), timeout)
        while not self.queue.empty():
            self.queue.get_nowait()


class Broker:
    def __init__(self, credentials: dict[str, Any] | None) -> None:
        self._credentials = credentials
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        if self._credentials is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="loyalty-live-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @contextlib.contextmanager
    def subscribe(self, member_id: uuid.UUID) -> Iterator[Subscription]:
        subscription = Subscription(member_id)
        self._subscriptions[member_id].add(subscription)
        try:
            yield subscription
        finally:
            subs = self._subscriptions.get(member_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._subscriptions[member_id]

    @property
    def subscription_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        member, _, event_id = payload.partition(":")
        try:
            subs = self._subscriptions.get(uuid.UUID(member))
        except ValueError:
            return
        for subscription in list(subs or ()):
            subscription.wake(int(event_id))

    def _wake_all(self) -> None:
        for subs in list(self._subscriptions.values()):
            for subscription in list(subs):
                subscription.wake(0)

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            conn = None
            try:
                conn = await db.raw_connection(self._credentials, application_name=LISTENER_NAME)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                self._wake_all()  # anything committed while we were not listening
                backoff = 0.2
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), HEALTH_CHECK_SECONDS)
                    if not lost.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), HEALTH_CHECK_SECONDS)
                raise ConnectionError("listening connection closed")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, ConnectionError, TimeoutError) as exc:
                self.connected.clear()
                self.reconnects += 1
                log.warning("live updates: listener lost (%s); reconnecting in %.1f s", exc, backoff)
                self._wake_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
