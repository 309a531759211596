"""Live balances over graphql-transport-ws, through a real uvicorn and a real WebSocket."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from tortoise.transactions import in_transaction

from api.live import LISTENER_NAME
from domain import clock, db
from domain.wallets import ledger
from tests.conftest import OPS, Member, Socket, enrolled, js_installed, next_update, purchase, until_live

WITH_CURSOR = """
subscription($after: String) {
  walletUpdated(after: $after) { cursor wallet { id balance pendingBalance } entry { id kind amount balanceAfter } }
}"""


@pytest.fixture
async def ana(gql, tokens) -> Member:
    return await enrolled(gql, tokens, "ana@example.com")


async def test_a_purchase_reaches_the_subscribed_app(live_server, app, gql, tokens, ana):
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    recorded = await purchase(gql, tokens, ana.id, "L-1", "12.00")
    update = (await next_update(sock))["walletUpdated"]
    assert update["wallet"]["balance"] == recorded["wallet"]["balance"] == 100 + 120
    assert update["entry"]["kind"] == "EARN" and update["entry"]["amount"] == 120
    assert update["entry"]["balanceAfter"] == 220
    await sock.close()


async def test_resume_replays_exactly_what_was_missed_then_goes_live(live_server, app, gql, tokens, ana):
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(WITH_CURSOR)
    await until_live(app, ana)
    await purchase(gql, tokens, ana.id, "M-0", "1.00")
    cursor = (await next_update(sock))["walletUpdated"]["cursor"]
    await sock.close()

    for i, amount in enumerate(["2.00", "3.00", "4.00"], start=1):
        await purchase(gql, tokens, ana.id, f"M-{i}", amount)

    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(WITH_CURSOR, {"after": cursor})
    replayed = [(await next_update(sock))["walletUpdated"] for _ in range(3)]
    assert [u["entry"]["amount"] for u in replayed] == [20, 30, 40]
    assert [u["wallet"]["balance"] for u in replayed] == [130, 160, 200]  # as it was then
    with pytest.raises(TimeoutError):
        await sock.receive(timeout=0.3)  # nothing more: no duplicate
    await purchase(gql, tokens, ana.id, "M-4", "5.00")
    live = (await next_update(sock))["walletUpdated"]
    assert live["entry"]["amount"] == 50
    await sock.close()


async def test_a_rolled_back_change_delivers_nothing(live_server, app, gql, tokens, ana):
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with in_transaction() as conn:
            wallet = (await ledger.lock(conn, ana.uuid, (ledger.POINTS,), clock.now()))[ledger.POINTS]
            await ledger.credit(conn, wallet, 999, kind="BONUS", description="never", now=clock.now(), expires_at=None)
            raise Abort
    await purchase(gql, tokens, ana.id, "R-1", "1.00")
    first = (await next_update(sock))["walletUpdated"]
    assert first["entry"]["amount"] == 10  # the real purchase, not the 999
    await sock.close()


async def test_members_never_see_each_others_updates(live_server, app, gql, tokens, ana):
    bo = await enrolled(gql, tokens, "bo@example.com")
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    await purchase(gql, tokens, bo.id, "B-1", "9.00")
    with pytest.raises(TimeoutError):
        await sock.receive(timeout=0.5)
    await sock.close()


async def test_an_expired_token_stops_delivery_and_closes_the_socket(live_server, app, gql, tokens, ana):
    from datetime import timedelta

    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    clock.advance(timedelta(hours=2))  # past the 15-minute access token
    await purchase(gql, tokens, ana.id, "X-1", "3.00")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await sock.receive(timeout=2)
    assert closed.value.rcvd.code == 4403


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer not-a-token"}, {"authorization": 42}])
async def test_a_missing_or_bad_token_closes_the_socket_before_any_subscription(live_server, payload):
    ws = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd.code == 4403


async def test_subscribe_before_connection_init_is_refused(live_server, ana):
    sock = await Socket.open(live_server, None, init=False)
    await sock.subscribe(OPS["WalletUpdated"])
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await sock.receive(timeout=2)
    assert closed.value.rcvd.code == 4401


async def test_the_legacy_protocol_is_off(live_server):
    try:
        ws = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=["graphql-ws"])
    except websockets.InvalidHandshake:
        return  # refused at the handshake: off
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd.code == 4406  # "Subprotocol not acceptable"


async def test_subscriptions_per_connection_are_capped(live_server, ana):
    from api.app import MAX_SUBSCRIPTIONS_PER_CONNECTION

    sock = await Socket.open(live_server, ana.token)
    for _ in range(MAX_SUBSCRIPTIONS_PER_CONNECTION):
        await sock.subscribe(OPS["WalletUpdated"])
    await sock.subscribe(OPS["WalletUpdated"])
    message = await sock.receive(timeout=2)
    assert message["type"] == "error" and "limit" in message["payload"][0]["message"]
    await sock.close()


async def test_staff_tokens_cannot_subscribe_to_member_updates(live_server, tokens):
    sock = await Socket.open(live_server, tokens.staff())
    await sock.subscribe(OPS["WalletUpdated"])
    message = await sock.receive(timeout=2)
    assert message["type"] == "error"  # the operation is refused before it starts
    assert message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    await sock.close()


async def test_updates_survive_the_listener_losing_its_connection(live_server, app, gql, tokens, ana, database):
    broker = app.state.services.broker
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    before = broker.reconnects
    conn = await db.raw_connection(database.credentials)
    killed = await conn.fetchval(
        # this database's listener only: other test runs and benches share the server
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND datname = current_database()",
        LISTENER_NAME,
    )
    await conn.close()
    assert killed >= 1
    await purchase(gql, tokens, ana.id, "K-1", "7.00")  # committed while no one listens
    update = (await next_update(sock, timeout=5))["walletUpdated"]
    assert update["entry"]["amount"] == 70
    assert broker.reconnects > before
    await broker.connected.wait()
    await sock.close()


async def test_five_hundred_abrupt_disconnects_leak_nothing(live_server, app, ana):
    broker = app.state.services.broker
    await asyncio.sleep(0.1)
    tasks_before = len(asyncio.all_tasks())
    socks = []
    for _ in range(500):
        sock = await Socket.open(live_server, ana.token)
        await sock.subscribe(OPS["WalletUpdated"])
        socks.append(sock)
    for _ in range(100):
        if broker.subscription_count >= 500:
            break
        await asyncio.sleep(0.05)
    assert broker.subscription_count >= 500
    for sock in socks:
        sock.ws.transport.abort()  # no close frame: the phone just vanished
    for _ in range(200):
        if broker.subscription_count == 0 and len(asyncio.all_tasks()) <= tasks_before:
            break
        await asyncio.sleep(0.05)
    assert broker.subscription_count == 0
    assert len(asyncio.all_tasks()) <= tasks_before, [t.get_name() for t in asyncio.all_tasks()][:20]


async def test_a_real_javascript_client_receives_updates(live_server, app, gql, tokens, ana):
    """graphql-ws from npm, run by Node, as an app built on it would subscribe."""
    js = await js_installed()
    node = await asyncio.create_subprocess_exec(
        "node",
        str(js / "subscribe.mjs"),
        f"ws://{live_server}/graphql",
        ana.token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    line = await asyncio.wait_for(node.stderr.readline(), 10)
    assert line.strip() == b"connected", line
    await until_live(app, ana)  # its subscribe message follows the ack
    await purchase(gql, tokens, ana.id, "JS-1", "6.00")
    out, err = await asyncio.wait_for(node.communicate(), 10)
    assert node.returncode == 0, err.decode()
    update = json.loads(out)["data"]["walletUpdated"]
    assert update["entry"]["kind"] == "EARN" and update["entry"]["amount"] == 60
    assert update["wallet"]["balance"] == 160


async def test_an_idle_socket_without_connection_init_is_closed(live_server):
    from api.app import CONNECTION_INIT_TIMEOUT_SECONDS

    ws = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=["graphql-transport-ws"])
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), CONNECTION_INIT_TIMEOUT_SECONDS + 3)
    assert closed.value.rcvd.code == 4408


async def test_a_client_that_falls_behind_is_told_and_resumes_without_a_gap(live_server, app, ana, database):
    from api.live import QUEUE_LIMIT

    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(WITH_CURSOR)
    await until_live(app, ana)
    burst = QUEUE_LIMIT * 3
    conn = await db.raw_connection(database.credentials)
    # A burst of committed changes in one transaction: more than a subscription may queue.
    await conn.execute(
        """
        INSERT INTO wallet_events (member_id, wallet_id, entry_id, kind, created_at, balance, pending)
        SELECT w.member_id, w.id, NULL, 'WALLET_UPDATED', now(), 100, g FROM wallets w, generate_series(1, $2) g
        WHERE w.member_id = $1 AND w.kind = 'POINTS'
        """,
        ana.uuid,
        burst,
    )
    await conn.close()
    received, told = [], None
    while told is None:
        message = await sock.receive(timeout=5)
        if message["type"] == "next" and message["payload"].get("errors"):
            told = message["payload"]["errors"][0]
        elif message["type"] == "next":
            received.append(message["payload"]["data"]["walletUpdated"])
        else:
            raise AssertionError(message)
    assert told["extensions"]["code"] == "SLOW_CONSUMER"
    assert 0 < len(received) <= QUEUE_LIMIT + 1
    cursor = received[-1]["cursor"]
    assert cursor in told["message"]
    await sock.close()

    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(WITH_CURSOR, {"after": cursor})
    rest = [(await next_update(sock, timeout=5))["walletUpdated"] for _ in range(burst - len(received))]
    pendings = [u["wallet"]["pendingBalance"] for u in received + rest]
    assert pendings == list(range(1, burst + 1))  # every change, once, in order
    with pytest.raises(TimeoutError):
        await sock.receive(timeout=0.3)
    await sock.close()
