"""Prometheus metrics (GET /metrics) and the request id every log line carries.

- GraphQL requests: duration by operation and outcome (`ok` or the first error's
  `extensions.code`), errors and userErrors by code.
- Live updates: open sockets, live subscriptions, events delivered and their latency.
- The worker's notifications and job runs (notifications/metrics.py).
- Read when scraped: the push queue's depth and the age of its oldest due row, the
  job queue's depth, the database pool in use.

Operation names come from clients: only names of documents that parsed and validated
become labels, at most MAX_OPERATION_LABELS of them per process, each a GraphQL name
of at most 64 characters; anything else is counted as "other".

`loyalty serve --workers N` shares one port between N processes, so a scrape reaches
one of them at random: there, prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR) sums what every process counted, and /metrics answers for
all of them."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from strawberry.types.execution import ExecutionContext, PreExecutionError
from tortoise import connections

from domain import clock, db
from domain.notifications import service as notifications

if TYPE_CHECKING:
    from domain.settings import Settings

log = logging.getLogger("loyalty.metrics")

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
MAX_OPERATION_LABELS = 100
QUEUE_COUNT_LIMIT = 100_000  # a due count stops here: "at least this many"
SCRAPE_QUERY_SECONDS = 2.0
POOL_SAMPLE_SECONDS = 5.0

REQUESTS = Histogram(
    "loyalty_graphql_request_duration_seconds",
    "GraphQL requests over HTTP, from the request (its body read) to the last byte out, by operation and outcome "
    "(ok, or the first error's extensions.code).",
    ["operation", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter("loyalty_graphql_errors_total", "Top-level GraphQL errors, by extensions.code.", ["operation", "code"])
USER_ERRORS = Counter(
    "loyalty_graphql_user_errors_total", "userErrors in mutation payloads, by code.", ["operation", "code"]
)
SOCKETS = Gauge("loyalty_websockets_open", "WebSocket connections open.", multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("loyalty_live_subscriptions", "Live subscriptions running.", multiprocess_mode="livesum")
FED = Gauge(
    "loyalty_live_subscriptions_fed", "Live subscriptions caught up and fed by the broker.", multiprocess_mode="livesum"
)
DELIVERED = Counter("loyalty_live_events_delivered_total", "Live events handed to subscribers, by kind.", ["kind"])
DELIVERY_LATENCY = Histogram(
    "loyalty_live_delivery_latency_seconds",
    "From a change's timestamp (taken as its transaction starts, so an upper bound of commit time) "
    "to its delivery to a live subscriber.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
POOL_IN_USE = Gauge("loyalty_db_pool_in_use", "Database connections lent out by the pool.", multiprocess_mode="livesum")
POOL_SIZE = Gauge("loyalty_db_pool_size", "Database connections the pool holds.", multiprocess_mode="livesum")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
_operations: set[str] = set()
_RESERVED = {"anonymous", "invalid", "none", "other"}  # our own labels: a client's operation cannot take them


def operation_label(name: str | None) -> str:
    """The label for a validated operation's name: bounded in number and length."""
    if name is None:
        return "anonymous"
    if name in _operations:
        return name
    if len(_operations) < MAX_OPERATION_LABELS and _NAME.fullmatch(name) and name not in _RESERVED:
        _operations.add(name)
        return name
    return "other"


def _code(value: object, default: str) -> str:
    return value if isinstance(value, str) and _CODE.fullmatch(value) else default


class _Request:
    """What the GraphQL layer learnt about the request being timed."""

    __slots__ = ("operation", "outcome")

    def __init__(self) -> None:
        self.operation = "none"
        self.outcome: str | None = None


_request: ContextVar[_Request | None] = ContextVar("graphql_request", default=None)


def count_operation(ctx: ExecutionContext) -> None:
    """Names the operation and its outcome for the request being timed, and counts its
    errors. Run as the operation ends, after masking has set the codes (also when
    parsing raised: a document over the token limit)."""
    record = _request.get()
    if record is not None:  # over WebSocket: sockets and subscriptions are counted instead
        record.operation, record.outcome = _count(ctx)


def _count(ctx: ExecutionContext) -> tuple[str, str]:
    if ctx.result is None or isinstance(ctx.result, PreExecutionError):  # the document did not parse or validate
        operation = "invalid"
        default = "GRAPHQL_PARSE_FAILED" if ctx.graphql_document is None else "GRAPHQL_VALIDATION_FAILED"
        codes = [_code((e.extensions or {}).get("code"), default) for e in ctx.pre_execution_errors or ()]
        codes = codes or [default]
        data = None
    else:
        operation = operation_label(ctx.operation_name)
        errors = ctx.result.errors or ()
        codes = [_code((e.extensions or {}).get("code"), "INTERNAL_SERVER_ERROR") for e in errors]
        data = ctx.result.data
    for code in codes:
        ERRORS.labels(operation, code).inc()
    if isinstance(data, dict):  # mutation payloads: { field: { userErrors: [{ code }] } }
        for payload in data.values():
            if isinstance(payload, dict):
                for user_error in payload.get("userErrors") or ():
                    if isinstance(user_error, dict) and "code" in user_error:
                        USER_ERRORS.labels(operation, _code(user_error["code"], "OTHER")).inc()
    return operation, codes[0] if codes else "ok"


def sample_pool() -> None:
    try:
        pool = connections.get("default")._pool  # Tortoise keeps asyncpg's pool here
    except Exception:
        return
    if pool is not None:
        size = pool.get_size()
        POOL_SIZE.set(size)
        POOL_IN_USE.set(size - pool.get_idle_size())


async def sample_pool_forever() -> None:
    """Each process's pool, for scrapes answered by another process (--workers N)."""
    while True:
        sample_pool()
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


class _Families:
    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return self.families


async def _queues() -> list:
    """The push queue by kind (due rows, the oldest due row's wait) and the job queue,
    each read from an index and bounded."""
    now = clock.now()
    rows = await notifications.queue_depths(now, QUEUE_COUNT_LIMIT)
    due = GaugeMetricFamily(
        "loyalty_push_queue_due",
        f"Notifications due and not yet sent, by kind (counted up to {QUEUE_COUNT_LIMIT}).",
        labels=["kind"],
    )
    age = GaugeMetricFamily(
        "loyalty_push_queue_oldest_due_age_seconds",
        "How long the oldest due notification has waited, by kind (0: none due).",
        labels=["kind"],
    )
    for row in rows:
        due.add_metric([row.kind], row.due)
        oldest = row.oldest
        age.add_metric([row.kind], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
    jobs = await db.jobs_waiting(QUEUE_COUNT_LIMIT)
    todo = GaugeMetricFamily(
        "loyalty_job_queue_todo", f"Jobs waiting in the job queue (counted up to {QUEUE_COUNT_LIMIT}).", jobs
    )
    return [due, age, todo]


async def scrape() -> bytes:
    sample_pool()
    try:
        read = await asyncio.wait_for(_queues(), SCRAPE_QUERY_SECONDS)
    except Exception as exc:  # the database is slow or away: serve the rest
        log.warning("metrics: queue depths not read: %s", exc)
        read = []
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(_Families(read))


def metrics_endpoint(settings: Settings):
    """GET /metrics. Open in development; with LOYALTY_METRICS_TOKEN set (and always in
    production), only with `Authorization: Bearer <token>`; in production without the
    token configured, refused."""
    token = settings.metrics_token
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    async def metrics(request: Request) -> Response:
        if expected is None and settings.production:
            return PlainTextResponse("Metrics are off: set LOYALTY_METRICS_TOKEN to serve them.", status_code=403)
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse(
                    "Send the metrics token as 'Authorization: Bearer <token>'.",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(await scrape(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def process_exiting() -> None:
    """In multiprocess mode, this process's gauges stop counting toward the live sums."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())
