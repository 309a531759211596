"""Live updates across processes: one LISTEN connection per API process.

A committed outbox row NOTIFYs `loyalty_events` with "member:event id" (the trigger
in migration 0003). The listener gathers the wake-ups of a burst and reads what is
new for all the woken subscriptions in one query, after each one's cursor, then
hands each its events through a bounded queue. A subscription that does not drain
its queue (a stalled phone) overflows and is told to resume from its cursor; it never
holds up the others, and memory per subscription stays bounded.
If the listening connection drops, every subscription is caught up from its cursor
once it is back: nothing committed in between is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

import asyncpg

from api import logs
from api.observability import DELIVERED, DELIVERY_LATENCY, FED, SUBSCRIPTIONS
from domain import clock, db
from domain.wallets import events

log = logging.getLogger("loyalty.live")

CHANNEL = "loyalty_events"
LISTENER_NAME = "loyalty-live"
QUEUE_LIMIT = 64  # events waiting for one subscription before it is told it fell behind
HEALTH_CHECK_SECONDS = 5.0
FETCH_LIMIT = 5000
SLOW_FETCH_SECONDS = 1.0
FETCH_ROUNDS = 4  # fetch rounds reading at once


class Subscription:
    """One live subscription: its kinds, how far it has been fed, its bounded queue.
    The queue is a deque and one waiter (an asyncio.Queue is 3.3 KiB, this 0.8: it is
    held by every idle subscription)."""

    __slots__ = ("fed", "kinds", "member_id", "overflowed", "pending", "waiter")

    def __init__(self, member_id: uuid.UUID, kinds: tuple[str, ...]) -> None:
        self.member_id = member_id
        self.kinds = kinds
        self.fed: int | None = None  # the last event id queued; None until it goes live
        self.pending: deque[events.Event] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def feed(self, event: events.Event) -> None:
        if self.fed is None or event.id <= self.fed:
            return
        self.fed = event.id
        if event.kind not in self.kinds or self.overflowed:
            return
        if len(self.pending) >= QUEUE_LIMIT:
            self.overflowed = True
            return
        self.pending.append(event)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self, timeout: float) -> events.Event | None:
        if not self.pending:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self.waiter
            except TimeoutError:
                return None
            finally:
                self.waiter = None
        event = self.pending.popleft()
        DELIVERED.labels(event.kind).inc()
        DELIVERY_LATENCY.observe(max((clock.now() - event.created_at).total_seconds(), 0.0))
        return event


class Broker:
    def __init__(self, credentials: dict[str, Any] | None) -> None:
        self._credentials = credentials
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = defaultdict(set)
        self._woken: set[uuid.UUID] = set()
        self._asked: dict[uuid.UUID, list[asyncio.Future[int]]] = defaultdict(list)
        self._asking: asyncio.Task | None = None
        self._fetching: set[asyncio.Task] = set()
        self._gathering = 0  # rounds about to take the woken members: a wake-up needs no new one
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        if self._credentials is not None and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="loyalty-live-listener")

    async def stop(self) -> None:
        for task in (self._task, self._asking, *self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._asking = None
        self._fetching.clear()

    @contextlib.contextmanager
    def subscribe(self, member_id: uuid.UUID, kinds: tuple[str, ...]) -> Iterator[Subscription]:
        """Register before the first read, so that nothing committed meanwhile is missed."""
        subscription = Subscription(member_id, kinds)
        self._subscriptions[member_id].add(subscription)
        SUBSCRIPTIONS.inc()
        try:
            yield subscription
        finally:
            SUBSCRIPTIONS.dec()
            if subscription.fed is not None:
                FED.dec()
            subs = self._subscriptions.get(member_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._subscriptions[member_id]

    async def latest(self, member_id: uuid.UUID) -> int:
        """The member's newest event id: where a subscription without a cursor starts.
        The subscriptions that start together ask in one query (10,000 phones
        reconnecting after a deploy would otherwise queue 10,000 reads for the pool)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._asked[member_id].append(future)
        if self._asking is None or self._asking.done():
            context = contextvars.copy_context()
            context.run(logs.request_id.set, None)
            self._asking = asyncio.create_task(self._answer(), name="loyalty-live-latest", context=context)
        return await future

    async def _answer(self) -> None:
        while self._asked:
            await asyncio.sleep(0)  # let the subscriptions of this burst ask
            asked = dict(list(self._asked.items())[:FETCH_LIMIT])
            for member_id in asked:
                del self._asked[member_id]
            try:
                found = await events.latest_many(list(asked))
            except Exception as exc:  # each asker fails as its own read would have
                for futures in asked.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for member_id, futures in asked.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(member_id, 0))

    def go_live(self, subscription: Subscription, cursor: int) -> None:
        """The subscription has read everything up to `cursor` itself; feed it from here.
        A fetch follows at once, for anything committed while it was reading."""
        if subscription.fed is None:
            FED.inc()
        subscription.fed = cursor
        self._wake(subscription.member_id)

    @property
    def subscription_count(self) -> int:
        return sum(len(s) for s in self._subscriptions.values())

    def live_count(self, member_id: uuid.UUID) -> int:
        """The member's subscriptions that have caught up and are fed live."""
        return sum(1 for s in self._subscriptions.get(member_id, ()) if s.fed is not None)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        member, _, _event_id = payload.partition(":")
        with contextlib.suppress(ValueError):
            member_id = uuid.UUID(member)
            if member_id in self._subscriptions:
                self._wake(member_id)

    def _wake(self, member_id: uuid.UUID) -> None:
        self._woken.add(member_id)
        # A round that waits on a slow read does not hold up the wake-ups after it: up to
        # FETCH_ROUNDS read at once. Rounds may overlap for a member: feed() takes each
        # event once and in order (ids grow per member), whichever round brings it first.
        if not self._gathering and len(self._fetching) < FETCH_ROUNDS:
            # It serves every subscriber, not the socket that woke it: its log lines carry no request id.
            context = contextvars.copy_context()
            context.run(logs.request_id.set, None)
            task = asyncio.create_task(self._fetch(), name="loyalty-live-fetch", context=context)
            self._fetching.add(task)
            task.add_done_callback(self._fetching.discard)

    def _wake_all(self) -> None:
        for member_id in list(self._subscriptions):
            self._wake(member_id)

    async def _fetch(self) -> None:
        """Read what is new for every woken member in one query, until none is left woken."""
        while self._woken:
            self._gathering += 1
            try:
                await asyncio.sleep(0)  # let the wake-ups of this burst gather
            finally:
                self._gathering -= 1
            cursors: dict[uuid.UUID, int] = {}
            for member_id in list(self._woken)[:FETCH_LIMIT]:
                self._woken.discard(member_id)
                fed = [s.fed for s in self._subscriptions.get(member_id, ()) if s.fed is not None]
                if fed:
                    cursors[member_id] = min(fed)
            started = time.perf_counter()
            try:
                found = await events.after_many(cursors, FETCH_LIMIT)
            except Exception:  # the database blipped: try these members again shortly
                log.exception("live updates: fetch failed")
                self._woken.update(cursors)
                await asyncio.sleep(0.5)
                continue
            for event in found:
                for subscription in list(self._subscriptions.get(event.member_id, ())):
                    subscription.feed(event)
            took = time.perf_counter() - started
            if took > SLOW_FETCH_SECONDS:  # the updates of this round waited as long
                log.warning("live updates: a fetch took %.1f s (%d members, %d events)", took, len(cursors), len(found))
            if len(found) == FETCH_LIMIT:  # more than one page: go again for these members
                self._woken.update(cursors)

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
                        await asyncio.wait_for(db.ping_raw(conn), HEALTH_CHECK_SECONDS)
                raise ConnectionError("listening connection closed")
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, ConnectionError, TimeoutError) as exc:
                self.connected.clear()
                self.reconnects += 1
                log.warning("live updates: listener lost (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
