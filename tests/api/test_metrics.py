"""GET /metrics: scraped after real requests, the series an operator watches move by
exactly what happened; operation labels stay bounded; production wants the token."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tortoise.transactions import in_transaction

from api import observability
from api.app import create_app
from tests.conftest import (
    OPS,
    Member,
    Socket,
    enroll,
    error_codes,
    member_uuid,
    next_update,
    production_settings,
    purchase,
    scrape,
    until_live,
)
from tests.seed import due_notifications

DURATION = "loyalty_graphql_request_duration_seconds"
METRICS_TOKEN = "metrics-token-for-the-scraper"


@pytest.fixture
def fresh_labels(monkeypatch):
    """Operation labels are admitted first come; each test that counts them starts empty."""
    monkeypatch.setattr(observability, "_operations", set())


async def test_a_purchase_counts_once_under_its_operation_and_ok(client, gql, tokens, fresh_labels):
    ana = await enroll(gql, tokens, "ana@example.com")
    before = await scrape(client)
    await purchase(gql, tokens, ana["id"], "R-1", "12.00")
    after = await scrape(client)
    ok = {"operation": "RecordPurchase", "outcome": "ok"}
    assert after(f"{DURATION}_count", **ok) == before(f"{DURATION}_count", **ok) + 1
    assert after(f"{DURATION}_bucket", le="+Inf", **ok) == before(f"{DURATION}_bucket", le="+Inf", **ok) + 1
    assert 0 < after(f"{DURATION}_sum", **ok) - before(f"{DURATION}_sum", **ok) < 10
    # the enrolment before it is its own operation: EnrollMember (the helper's anonymous mutation)
    assert after(f"{DURATION}_count", operation="anonymous", outcome="ok") >= 1


async def test_an_unauthenticated_request_counts_its_code(client, gql, tokens, fresh_labels):
    ana = await enroll(gql, tokens, "ana@example.com")
    variables = {"memberId": ana["id"], "externalId": "U-1", "amount": "1.00", "currency": "EUR", "channel": "STORE"}
    before = await scrape(client)
    result = await gql(OPS["RecordPurchase"], variables)  # no token
    assert error_codes(result) == ["UNAUTHENTICATED"]
    after = await scrape(client)
    denied = {"operation": "RecordPurchase", "outcome": "UNAUTHENTICATED"}
    assert after(f"{DURATION}_count", **denied) == before(f"{DURATION}_count", **denied) + 1
    code = {"operation": "RecordPurchase", "code": "UNAUTHENTICATED"}
    assert after("loyalty_graphql_errors_total", **code) == before("loyalty_graphql_errors_total", **code) + 1
    ok = {"operation": "RecordPurchase", "outcome": "ok"}
    assert after(f"{DURATION}_count", **ok) == before(f"{DURATION}_count", **ok)


async def test_user_errors_count_by_code_and_the_request_is_ok(client, gql, tokens, fresh_labels):
    ana = await enroll(gql, tokens, "ana@example.com")
    await purchase(gql, tokens, ana["id"], "C-1", "5.00")
    before = await scrape(client)
    conflict = await purchase(gql, tokens, ana["id"], "C-1", "6.00")  # the same receipt, another amount
    assert [e["code"] for e in conflict["userErrors"]] == ["IDEMPOTENCY_CONFLICT"]
    after = await scrape(client)
    code = {"operation": "RecordPurchase", "code": "IDEMPOTENCY_CONFLICT"}
    assert after("loyalty_graphql_user_errors_total", **code) == before("loyalty_graphql_user_errors_total", **code) + 1
    ok = {"operation": "RecordPurchase", "outcome": "ok"}
    assert after(f"{DURATION}_count", **ok) == before(f"{DURATION}_count", **ok) + 1


async def test_operation_labels_are_bounded(client, gql, tokens, fresh_labels):
    staff = tokens.staff()
    room = observability.MAX_OPERATION_LABELS
    before = await scrape(client)
    for i in range(room + 5):
        assert await gql(f"query Probe{i} {{ __typename }}", token=staff) == {"data": {"__typename": "Query"}}
    long_name = "L" * 65
    await gql(f"query {long_name} {{ __typename }}", token=staff)
    await gql("query invalid { __typename }", token=staff)  # our own label: not the client's to take
    await gql("query Unknown { noSuchField }", token=staff)  # does not validate: its name is not a label
    await gql("query Broken {", token=staff)
    samples = await scrape(client)
    labels = {dict(k[1]).get("operation") for k in samples if k[0] == f"{DURATION}_count"}
    probes = {name for name in labels if name.startswith("Probe")}
    assert len(probes) == room and "Probe0" in probes and f"Probe{room}" not in probes
    other = {"operation": "other", "outcome": "ok"}
    late = 5 + 1 + 1  # the five past the cap, the long name, "invalid"
    assert samples(f"{DURATION}_count", **other) == before(f"{DURATION}_count", **other) + late
    assert long_name not in labels and "Unknown" not in labels and "Broken" not in labels
    assert samples(f"{DURATION}_count", operation="invalid", outcome="GRAPHQL_VALIDATION_FAILED") >= 1
    assert samples(f"{DURATION}_count", operation="invalid", outcome="ok") == 0
    assert samples(f"{DURATION}_count", operation="invalid", outcome="GRAPHQL_PARSE_FAILED") >= 1


async def test_requests_refused_before_graphql_count_by_status(client, tokens):
    before = await scrape(client)
    batch = [{"query": "{ __typename }"}, {"query": "{ __typename }"}]
    response = await client.post("/graphql", json=batch, headers={"Authorization": f"Bearer {tokens.staff()}"})
    assert response.status_code == 400
    after = await scrape(client)
    refused = {"operation": "none", "outcome": "HTTP_400"}
    assert after(f"{DURATION}_count", **refused) == before(f"{DURATION}_count", **refused) + 1


async def test_live_sockets_subscriptions_and_delivery(live_server, app, client, gql, tokens):
    data = await enroll(gql, tokens, "ana@example.com")
    ana = Member(data, tokens.member(member_uuid(data["id"])))
    before = await scrape(client)
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    during = await scrape(client)
    assert during("loyalty_websockets_open") == before("loyalty_websockets_open") + 1
    assert during("loyalty_live_subscriptions") == before("loyalty_live_subscriptions") + 1
    assert during("loyalty_live_subscriptions_fed") == before("loyalty_live_subscriptions_fed") + 1

    await purchase(gql, tokens, ana.id, "L-1", "3.00")
    await next_update(sock)
    after = await scrape(client)
    delivered = "loyalty_live_events_delivered_total"
    assert after(delivered, kind="WALLET_UPDATED") == before(delivered, kind="WALLET_UPDATED") + 1
    latency = "loyalty_live_delivery_latency_seconds"
    assert after(f"{latency}_count") == before(f"{latency}_count") + 1
    assert 0 <= after(f"{latency}_sum") - before(f"{latency}_sum") < 5

    await sock.close()
    for _ in range(200):  # the server notices the close on its own time
        gone = await scrape(client)
        if gone("loyalty_websockets_open") == before("loyalty_websockets_open"):
            break
        await asyncio.sleep(0.02)
    assert gone("loyalty_websockets_open") == before("loyalty_websockets_open")
    assert gone("loyalty_live_subscriptions") == before("loyalty_live_subscriptions")
    assert gone("loyalty_live_subscriptions_fed") == before("loyalty_live_subscriptions_fed")


async def test_queue_depth_and_oldest_age_are_read_at_scrape(client, database):
    from domain import db

    conn = await db.raw_connection(database.credentials)
    try:
        await due_notifications(conn, 3, "Q")  # three CAMPAIGN pushes due a minute ago
    finally:
        await conn.close()
    samples = await scrape(client)
    assert samples("loyalty_push_queue_due", kind="CAMPAIGN") == 3
    assert samples("loyalty_push_queue_due", kind="EXPIRY") == 0
    assert 60 <= samples("loyalty_push_queue_oldest_due_age_seconds", kind="CAMPAIGN") < 120
    assert samples("loyalty_push_queue_oldest_due_age_seconds", kind="EXPIRY") == 0
    assert samples("loyalty_job_queue_todo") == 0


async def test_the_pool_in_use_counts_a_held_connection(client):
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:  # another task, as another request would hold it
        async with in_transaction() as conn:
            await conn.execute_query("SELECT 1")
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    await holding.wait()
    held = await scrape(client)
    release.set()
    await task
    released = await scrape(client)
    assert held("loyalty_db_pool_in_use") == released("loyalty_db_pool_in_use") + 1
    assert held("loyalty_db_pool_size") >= 1


# -- protection ---------------------------------------------------------------


@pytest.fixture
async def production_app(database, tmp_path, monkeypatch):
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)

    async def build(**overrides):
        app = create_app(production_settings(tmp_path, database_url=database.dsn(), **overrides))
        return app

    return build


async def _get_metrics(app, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as c:
        return await c.get("/metrics", headers=headers)


async def test_production_without_a_metrics_token_serves_no_metrics(production_app):
    app = await production_app()
    response = await _get_metrics(app)
    assert response.status_code == 403
    assert "LOYALTY_METRICS_TOKEN" in response.text
    assert "loyalty_" not in response.text


async def test_production_serves_metrics_only_to_the_token(production_app):
    app = await production_app(metrics_token=METRICS_TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        response = await _get_metrics(app, **headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "loyalty_" not in response.text
    response = await _get_metrics(app, Authorization=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    assert "loyalty_graphql_request_duration_seconds" in response.text
