"""The Starlette application: GraphQL over HTTP and WebSocket, health and readiness."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from api import http
from api.context import Context
from api.deadlines import uvicorn_options
from api.documents import DOCUMENT_ID, DocumentGate, ManifestError, TrustedDocuments
from api.edge import Edge, parsed, parsed_body
from api.live import Broker
from api.observability import metrics_endpoint, process_exiting, sample_pool_forever
from api.schema import GUARD_RULES, PRODUCTION_RULES, build_schema
from api.services import Services
from api.sockets import GuardedTransportWS, authorised
from domain import db
from domain.program.config import Program
from domain.program.config import load as load_program
from domain.settings import ConfigurationError, Settings

log = logging.getLogger("loyalty.api")

CONNECTION_INIT_TIMEOUT_SECONDS = 5
MAX_SUBSCRIPTIONS_PER_CONNECTION = 10
WORKER_STOP_SECONDS = 10


# GraphiQL's scripts and styles, served by the app itself (development only): the very
# files strawberry's page loads from unpkg.com, at the same paths under /graphiql/, so
# its integrity hashes still check them (api/static/graphiql/README.md).
GRAPHIQL_ASSETS = Path(__file__).parent / "static" / "graphiql"
GRAPHIQL_PREFIX = "/graphiql/"


class GraphQLView(GraphQL):
    graphql_transport_ws_handler_class = GuardedTransportWS

    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    @functools.cached_property
    def graphql_ide_html(self) -> str:
        return super().graphql_ide_html.replace("https://unpkg.com/", GRAPHIQL_PREFIX)

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(
            services=self.services,
            authorization=request.headers.get("authorization"),
            request_id=request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex,
            websocket=request if isinstance(request, WebSocket) else None,
            client=request.client.host if request.client else None,
            response=None if isinstance(request, WebSocket) else response,
        )

    # -- trusted documents: `documentId` travels beside the query; carry it in the
    # extensions strawberry already passes along, to `execute_single`.
    def parse_json(self, data: str | bytes) -> Any:
        # The edge has parsed a JSON body already, to check it (api/edge.py).
        document = parsed(data)
        return _lift_document_id(super().parse_json(data) if document is None else document)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        # The common request, a POST of one JSON operation that the edge parsed, read
        # without strawberry's content-type parsing (email.message, for the Content-Type
        # and again for Accept: 3 % of `Me`'s CPU). Anything else, a malformed field
        # included, takes strawberry's own path and wording.
        remembered = parsed_body.get()
        if request.method != "POST" or remembered is None or not isinstance(remembered[1], dict):
            return await super().parse_http_body(request)
        data = remembered[1]
        query, variables, extensions = data.get("query"), data.get("variables"), data.get("extensions")
        if (
            "application/json" not in _media_type(request.content_type or "")
            or _may_stream(request.headers.get("accept") or "")
            or not isinstance(query, str | None)
            or not isinstance(variables, dict | None)
            or not isinstance(extensions, dict | None)
            or not isinstance(data.get("operationName"), str | None)
        ):
            return await super().parse_http_body(request)
        parsed_body.set(None)
        data = _lift_document_id(data)
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
            protocol="http",
        )

    def encode_json(self, data: object) -> str:
        # orjson: the answer's JSON in a fifth of the time json.dumps takes (WalletHistory:
        # 2 % of its CPU); UTF-8 as is rather than \u escapes, as RFC 8259 prefers. Text,
        # not bytes: over a WebSocket, bytes would go out as binary frames.
        return orjson.dumps(data).decode()

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        return _lift_document_id(super().parse_query_params(params))

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming a document by id is an operation, not a visit to GraphiQL. (A POST
        # never is one: its query string is not parsed for nothing.)
        if request.method != "GET":
            return False
        named = "documentId" in request.query_params or "extensions" in request.query_params
        return not named and super().should_render_graphql_ide(request)

    async def execute_single(self, request, request_adapter, sub_response, context, root_value, request_data):
        principal = context.principal()
        extensions = request_data.extensions if isinstance(request_data.extensions, dict) else {}
        chosen = self.services.documents.choose(
            request_data.query, extensions.get(DOCUMENT_ID), extensions, principal.role if principal else None
        )
        if isinstance(chosen, GraphQLError):
            result, chosen = ExecutionResult(data=None, errors=[chosen]), None
        else:
            request_data.query = chosen.query
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
            if chosen.remember and self.schema.documents.get(chosen.query) is not None:
                self.services.documents.remember(chosen.remember, chosen.query)
        http.shape(request, sub_response, result, chosen)
        return result

    def create_response(self, response_data: Any, sub_response: Any) -> Any:
        if getattr(sub_response, "request_error", False) and isinstance(response_data, dict):
            response_data.pop("data", None)  # graphql-response+json: no data entry when nothing ran
        response = super().create_response(response_data, sub_response)
        media = getattr(sub_response, "graphql_media", http.JSON)
        if media != http.JSON:
            response.headers["content-type"] = f"{media}; charset=utf-8"
        if getattr(sub_response, "cacheable", False):
            tag = http.etag(response.body)
            response.headers["etag"] = tag
            if http.matches(sub_response.if_none_match, tag):
                response.status_code = 304
                response.body = b""
                del response.headers["content-length"]
        return response

    async def on_ws_connect(self, context: Context) -> None:
        # The token travels in connection_init; without a valid one the socket is
        # closed (4403) before any subscription can start.
        if not await authorised(context):
            raise ConnectionRejectionError()


def _media_type(content_type: str) -> str:
    """A Content-Type's media type, lowercased, as email.message reads it (what
    strawberry's parse_content_type returns): text/plain unless it is type/subtype."""
    media = content_type.partition(";")[0].strip().lower()
    return media if media.count("/") == 1 else "text/plain"


def _may_stream(accept: str) -> bool:
    """Whether strawberry's streaming transports (multipart subscriptions, SSE) could
    take a request with this Accept header: then strawberry reads it."""
    accept = accept.lower()
    return "multipart/mixed" in accept or "text/event-stream" in accept


def _lift_document_id(data: Any) -> Any:
    if isinstance(data, dict) and "documentId" in data:
        extensions = data.get("extensions")
        if extensions is None or isinstance(extensions, dict):
            data["extensions"] = {**(extensions or {}), DOCUMENT_ID: data.pop("documentId")}
    return data


def tune_garbage_collector() -> None:
    """A server holding thousands of sockets has millions of objects, and a full
    collection over them stalls every delivery for ~0.5 s (bench/fanout saw p99 430 ms
    become 15 ms). Everything alive after startup is frozen out of collections, and
    collections run less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    if _log_slow_collections not in gc.callbacks:
        gc.callbacks.append(_log_slow_collections)


_collection_started = 0.0


def _log_slow_collections(phase: str, info: dict) -> None:
    """A full collection that stalls deliveries long enough to see in the latency."""
    global _collection_started
    if info["generation"] != 2:
        return
    if phase == "start":
        _collection_started = time.perf_counter()
        return
    took = time.perf_counter() - _collection_started
    if took > 0.05:
        log.warning("a full garbage collection took %.0f ms (%d collected)", took * 1000, info["collected"])


def create_app(
    settings: Settings | None = None,
    *,
    program: Program | None = None,
    database: db.Database | None = None,
    manage_orm: bool = True,
    worker: bool = False,
) -> Starlette:
    """The API on `database`: it migrates and connects at startup and disconnects at
    shutdown; with manage_orm=False the caller has connected the ORM already (tests)."""
    settings = settings or Settings()
    settings.check()
    services = Services.from_settings(settings, program or load_program(settings.program))
    services.broker = Broker(database.credentials if database is not None else None)
    graphql = GraphQLView(
        services,
        schema=build_schema(production=settings.production),
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=True,
        # The modern protocol only; the legacy subscriptions-transport-ws is off.
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        connection_init_wait_timeout=timedelta(seconds=CONNECTION_INIT_TIMEOUT_SECONDS),
        max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
    )
    services.documents = _document_gate(settings, graphql.schema)

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> JSONResponse:
        if services.worker_failure is not None:
            return JSONResponse({"ready": False, "reason": services.worker_failure}, status_code=503)
        if not services.ready:
            return JSONResponse({"ready": False, "reason": "starting"}, status_code=503)
        try:
            await db.ping()
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"ready": False, "reason": "database unreachable"}, status_code=503)
        return JSONResponse({"ready": True})

    def worker_ended(task: asyncio.Task) -> None:
        """The worker never ends on its own: if it does, the process is no longer ready
        (no push, no periodic job would run), and says why at once."""
        if task.cancelled() or not services.ready:  # stopped by us, on the way out
            return
        failure = task.exception()
        services.worker_failure = f"worker stopped: {failure or 'returned'}"
        log.error("the in-process worker stopped; /readyz now answers 503: %s", failure, exc_info=failure)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        manage = database is not None and manage_orm
        if manage:
            await db.migrate(database.credentials)
            await db.connect(database.credentials)
        await services.broker.start()
        background = None
        if worker and database is not None:  # the jobs and the push dispatcher, in this process
            # Imported here: an API process without the worker (--no-worker, several
            # --workers) never loads the job queue and the push sender (~0.3 s, measured).
            from notifications import worker as jobs

            background = asyncio.create_task(jobs.run(settings, services.program, database.dsn()), name="worker")
            background.add_done_callback(worker_ended)
        sampler = asyncio.create_task(sample_pool_forever(), name="metrics-pool")
        services.ready = True
        if manage:
            tune_garbage_collector()
        try:
            yield
        finally:
            services.ready = False
            sampler.cancel()
            if background is not None and not background.done():  # a dead one was logged as it died
                background.cancel()
                # Bounded: a job that ignores cancellation must not hold the process.
                await asyncio.wait({background}, timeout=WORKER_STOP_SECONDS)
                if not background.done():
                    log.warning("the worker did not stop within %d s; leaving it behind", WORKER_STOP_SECONDS)
                elif not background.cancelled() and background.exception() is not None:
                    log.warning("the worker failed while stopping: %s", background.exception())
            await services.broker.stop()
            services.firebase.close()
            if manage:
                await db.disconnect()
            process_exiting()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint(settings)),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            *(
                []
                if settings.production
                else [Mount(GRAPHIQL_PREFIX.rstrip("/"), StaticFiles(directory=GRAPHIQL_ASSETS), name="graphiql")]
            ),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.schema = graphql.schema
    # Request ids, bounds, metrics, the JSON check and gzip: one layer (api/edge.py).
    app.add_middleware(Edge, body_timeout=settings.body_timeout_seconds, graphql=graphql)
    return app


def _document_gate(settings: Settings, schema: Any) -> DocumentGate:
    """The trusted documents, each parsed and validated now: a bad manifest entry stops the start."""
    try:
        rules = PRODUCTION_RULES if settings.production else GUARD_RULES
        trusted = TrustedDocuments.load(settings.trusted_manifests, schema._schema, rules)
    except ManifestError as exc:
        raise ConfigurationError(f"LOYALTY_TRUSTED_DOCUMENTS: {exc}") from None
    if settings.trusted_manifests:
        log.info("%d trusted documents; text documents: %s", len(trusted), settings.trusted_only_mode)
    return DocumentGate(trusted, settings.trusted_only_mode)


def app_from_environment() -> Starlette:
    """For `loyalty serve --workers N`: each worker process builds its app from LOYALTY_*."""
    settings = Settings()
    uvicorn_options(settings)  # this worker's header deadline
    database = db.open_database(settings.database_url, settings.home)
    return create_app(settings, database=database, worker=settings.serve_worker)
