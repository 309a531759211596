"""Test harness: a real PostgreSQL (LOYALTY_TEST_DATABASE_URL, else the embedded one),
a fresh database per run with the migrations applied, tables emptied between tests,
and the app driven in-process over HTTP (httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from tortoise import connections

from api.app import create_app
from domain import clock, db
from domain.errors import DomainError
from domain.identity.tokens import Role, TokenIssuer
from domain.members import service as members
from domain.purchases import service as purchases
from domain.settings import Settings
from domain.tiers import service as tiers
from domain.wallets import service as wallets
from notifications.push import FcmSender
from tests.fake_fcm import FakeFcm, service_account

TEST_SECRET = "test-signing-key-that-is-long-enough-for-hs256"
FIREBASE_PROJECT = "demo-loyalty"


@pytest.fixture(scope="session")
async def database():
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    home = None
    if url:
        server = db.Database(db.credentials_from_url(url))
    else:
        # Not under pytest's basetemp: another pytest run (a nested one included) makes
        # /tmp/pytest-of-<user> 0700, and pgserver's postgres, run as its own user when
        # we are root, would lose its data folder mid-run.
        home = Path(tempfile.mkdtemp(prefix="loyalty-test-pg-"))
        home.chmod(0o755)
        server = db.start_embedded(home)
    name = f"loyalty_test_{uuid.uuid4().hex[:10]}"
    admin = await db.raw_connection(server.credentials)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    test_db = db.Database({**server.credentials, "database": name})
    await db.migrate(test_db.credentials)
    await db.connect(test_db.credentials, pool_max=60)
    yield test_db
    await db.disconnect()
    admin = await db.raw_connection(server.credentials)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
    server.stop()
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def tables(database: db.Database) -> list[str]:
    conn = await db.raw_connection(database.credentials)
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'tortoise_migrations'"
    )
    await conn.close()
    return [r["tablename"] for r in rows]


@pytest.fixture(autouse=True)
async def clean(database: db.Database, tables: list[str]):
    """Each test starts from empty tables and the real time."""
    clock.reset()
    conn = await db.raw_connection(database.credentials)
    await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    await conn.close()
    yield
    clock.reset()


@pytest.fixture(autouse=True)
async def fresh_rate_limits(request):
    """Each test starts from fresh rate-limit counters: the app lives for the session, and
    one test's sign-ins must not throttle the next's."""
    if "app" in request.fixturenames:
        await request.getfixturevalue("app").state.services.rate_limits.limiter.storage.reset()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        jwt_secret=TEST_SECRET,
        firebase_project_id=FIREBASE_PROJECT,
        home=tmp_path_factory.mktemp("home"),
        env="development",
    )


@pytest.fixture(scope="session")
async def app(database: db.Database, settings: Settings):
    application = create_app(settings, database=database, manage_orm=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(TEST_SECRET.encode())


class Tokens:
    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer

    def member(self, member_id: str | uuid.UUID) -> str:
        return self.issuer.mint(Role.MEMBER, str(member_id))[0]

    def staff(self, name: str = "till-1") -> str:
        return self.issuer.mint(Role.STAFF, name)[0]

    def marketer(self, name: str = "mia") -> str:
        return self.issuer.mint(Role.MARKETER, name)[0]

    def expired(self, role: Role = Role.STAFF, subject: str = "till-1") -> str:
        return self.issuer.mint(role, subject, ttl=timedelta(seconds=-60))[0]


@pytest.fixture(scope="session")
def tokens(issuer: TokenIssuer) -> Tokens:
    return Tokens(issuer)


class GraphQL:
    """Sends documents the way clients do: POST /graphql with a bearer token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __call__(
        self, query: str, variables: dict | None = None, token: str | None = None, operation: str | None = None
    ) -> dict:
        response = await self.raw(query, variables, token, operation)
        assert response.status_code == 200, response.text
        return response.json()

    async def raw(
        self, query: str, variables: dict | None = None, token: str | None = None, operation: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body: dict = {"query": query, "variables": variables or {}}
        if operation:
            body["operationName"] = operation
        return await self.client.post("/graphql", json=body, headers=headers)


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQL:
    return GraphQL(client)


async def enroll(gql: GraphQL, tokens: Tokens, email: str, **extra) -> dict:
    """Enrol through the API as the till does; returns the member {id, memberNumber}."""
    result = await gql(
        "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) "
        "{ member { id memberNumber } userErrors { code field message } } }",
        {"input": {"email": email, **extra}},
        token=tokens.staff(),
    )
    payload = result["data"]["enrollMember"]
    assert payload["userErrors"] == [], payload
    return payload["member"]


class Member:
    """An enrolled member as the tests hold one: global id, number, uuid and access token."""

    def __init__(self, data: dict, token: str) -> None:
        self.id = data["id"]
        self.number = data["memberNumber"]
        self.uuid = member_uuid(data["id"])
        self.token = token


async def enrolled(gql: GraphQL, tokens: Tokens, email: str, **extra) -> Member:
    data = await enroll(gql, tokens, email, **extra)
    return Member(data, tokens.member(member_uuid(data["id"])))


def member_uuid(global_id: str) -> uuid.UUID:
    from api.relay import uuid_of

    return uuid_of(global_id, "Member")


def error_codes(result: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors", [])]


async def count(database: db.Database, table: str) -> int:
    conn = await db.raw_connection(database.credentials)
    try:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")
    finally:
        await conn.close()


# The project's copy of the client contract's documents (contract/operations/).
CONTRACT = Path(__file__).resolve().parents[1] / "contract"
OPERATIONS_DIR = CONTRACT / "operations"


def contract_documents() -> dict[str, tuple[Path, str]]:
    """Operation name -> (file, the operation's text with the fragments it uses)."""
    from api.documents import operations_of

    return operations_of(sorted(OPERATIONS_DIR.glob("*.graphql")))


# The contract's documents, each with the fragments it uses, as the clients send them.
OPS = {name: text for name, (_, text) in contract_documents().items()}
WELCOME = 100  # the demo program's welcome bonus


async def purchase(gql: GraphQL, tokens: Tokens, member, receipt: str, amount: str, **extra) -> dict:
    """A store purchase recorded at the till; `member` is a global id or has one as `.id`."""
    variables = {
        "memberId": getattr(member, "id", member),
        "externalId": receipt,
        "amount": amount,
        "currency": "EUR",
        "channel": "STORE",
        "storeId": "paris-1",
        **extra,
    }
    result = await gql(OPS["RecordPurchase"], variables, token=tokens.staff())
    return result["data"]["recordPurchase"]


async def ledger_sums(database: db.Database, member_id: uuid.UUID) -> tuple[int, int, int]:
    """(wallet balance, sum of entries, sum of lot remainders) of a member's points wallet."""
    conn = await db.raw_connection(database.credentials)
    try:
        row = await conn.fetchrow(
            """SELECT w.balance,
                      (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.wallet_id = w.id) AS entries,
                      (SELECT COALESCE(SUM(remaining), 0) FROM lots l WHERE l.wallet_id = w.id
                        AND l.state = 'AVAILABLE') AS lots
               FROM wallets w WHERE w.member_id = $1 AND w.kind = 'POINTS'""",
            member_id,
        )
    finally:
        await conn.close()
    return int(row["balance"]), int(row["entries"]), int(row["lots"])


@asynccontextmanager
async def serving(app):
    """The app behind a real uvicorn on a free port, on the test's event loop."""
    import asyncio
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    await app.state.services.broker.connected.wait()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def live_server(app):
    async with serving(app) as address:
        yield address


class Socket:
    """A graphql-transport-ws client over a real WebSocket (the `websockets` package)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.next_id = 0

    @classmethod
    async def open(cls, address: str, token: str | None, *, init: bool = True) -> Socket:
        import json

        import websockets

        ws = await websockets.connect(f"ws://{address}/graphql", subprotocols=["graphql-transport-ws"])
        sock = cls(ws)
        if init:
            payload = {"authorization": f"Bearer {token}"} if token else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "connection_ack", ack
        return sock

    async def subscribe(self, query: str, variables: dict | None = None) -> str:
        import json

        self.next_id += 1
        sid = str(self.next_id)
        await self.ws.send(
            json.dumps({"id": sid, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}})
        )
        return sid

    async def receive(self, timeout: float = 2.0) -> dict:
        import asyncio
        import json

        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def close(self) -> None:
        await self.ws.close()


async def until_live(app, member, count: int = 1) -> None:
    """Until the member's (`.uuid`) subscriptions are live: a change committed before that
    would be history to a subscription without `after`, not an update."""
    import asyncio

    broker = app.state.services.broker
    for _ in range(500):
        if broker.live_count(member.uuid) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscription never went live")


async def next_update(sock: Socket, timeout: float = 1.0) -> dict:
    message = await sock.receive(timeout)
    assert message["type"] == "next", message
    return message["payload"]["data"]


@contextlib.asynccontextmanager
async def scratch_database(prefix: str):
    """A database of its own on LOYALTY_TEST_DATABASE_URL's server, for tests that start
    `loyalty` processes against a URL; dropped afterwards. Skips without that server."""
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if not url:
        pytest.skip("needs LOYALTY_TEST_DATABASE_URL")
    server = db.credentials_from_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await db.raw_connection(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield db.Database({**server, "database": name})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


JS_CLIENTS = Path(__file__).resolve().parent / "js"


async def js_installed() -> Path:
    """tests/js with its npm packages: `npm ci` from the lock file when a fresh clone (or
    an older checkout) lacks a package that package.json names, or has another version
    of it than the lock file."""
    import asyncio
    import json
    import shutil

    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed for the JavaScript client tests")
    manifest = json.loads((JS_CLIENTS / "package.json").read_text())
    locked = json.loads((JS_CLIENTS / "package-lock.json").read_text())["packages"]

    def installed(name: str) -> str | None:
        path = JS_CLIENTS / "node_modules" / name / "package.json"
        return json.loads(path.read_text()).get("version") if path.exists() else None

    names = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    if all(installed(name) == locked[f"node_modules/{name}"]["version"] for name in names):
        return JS_CLIENTS
    install = await asyncio.create_subprocess_exec(
        "npm",
        "ci",
        "--no-audit",
        "--no-fund",
        cwd=JS_CLIENTS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(install.communicate(), 300)
    assert install.returncode == 0, err.decode()
    return JS_CLIENTS


# -- sign-in with Firebase ID tokens (the Auth emulator's unsigned ones) ---------------

SIGN_IN = """mutation($t: String!) { signInWithFirebase(input: {idToken: $t}) {
  accessToken accessTokenExpiresAt refreshToken member { id email displayName } userErrors { code field } } }"""
REFRESH = """mutation($r: String!) { refreshSession(input: {refreshToken: $r}) {
  accessToken refreshToken member { id } } }"""
SIGN_OUT = "mutation($r: String!) { signOut(input: {refreshToken: $r}) { userErrors { code } } }"


def id_token(
    uid: str,
    *,
    email: str | None = None,
    verified: bool = True,
    name: str | None = None,
    project: str = FIREBASE_PROJECT,
    issuer: str | None = None,
    expires_in: int = 3600,
) -> str:
    """An ID token as the Firebase Auth emulator issues it: unsigned (alg none)."""
    now = int(time.time())
    claims = {
        "iss": issuer or f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now - 10,
        "exp": now + expires_in,
        "firebase": {"identities": {}, "sign_in_provider": "password"},
    }
    if email:
        claims.update(email=email, email_verified=verified)
    if name:
        claims["name"] = name

    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


# -- production settings ---------------------------------------------------------------

INTROSPECTION = "{ __schema { types { name } } }"
PRODUCTION_SECRET = "production-secret-of-at-least-32-chars"


def production_settings(tmp_path, **overrides) -> Settings:
    values = {
        "env": "production",
        "jwt_secret": PRODUCTION_SECRET,
        "database_url": "postgresql://loyalty@db.internal:5432/loyalty",
        "firebase_project_id": FIREBASE_PROJECT,
        "home": tmp_path,
        "program": Path(__file__).resolve().parents[1] / "domain" / "program" / "demo.toml",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def production(database, tmp_path, monkeypatch):
    """A client of the app built with production settings, its lifespan running."""
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    app = create_app(production_settings(tmp_path, database_url=database.dsn()))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://prod") as c:
            yield c


# -- /metrics, scraped and parsed ---------------------------------------------------------


class Samples(dict):
    def __call__(self, name: str, **labels: str) -> float:
        return self.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def parse(text: str) -> Samples:
    samples = Samples()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


# -- the client contract's documents ----------------------------------------------------

# Operations whose every field exists by now; this set only grows.
REQUIRED = {
    # foundation
    "EnrollMember",
    "LookupMember",
    "Me",
    "MemberCard",
    "UpdatePreferences",
    # wallets and the ledger
    "WalletHistory",
    "Rewards",
    "RedeemReward",
    "RecordPurchase",
    "RefundPurchase",
    "RedeemCoupon",
    "AdjustPoints",
    "CreateReward",
    # live updates
    "WalletUpdated",
    "TierChanged",
    # push notifications
    "RegisterDevice",
    "Notifications",
    "ReportLocation",
    # segments and offers
    "Segments",
    "CreateOffer",
    "MyOffers",
    "ActivateOffer",
    # the program's KPIs
    "ProgramKpis",
    # campaigns
    "CreateCampaign",
    "ScheduleCampaign",
    "CancelCampaign",
    "CampaignStats",
}


DOCUMENTS = contract_documents()


# -- the ledger through the domain use cases ---------------------------------------------

BASE = """
version = 1
[program]
name = "Test"
currency = "EUR"
timezone = "UTC"
[earning]
points_per_unit = 1
{earning}
[expiry]
{expiry}
[pending]
days = {pending}
[bonuses]
welcome = {welcome}
birthday = 50
[cashback]
{cashback}
[[tiers]]
key = "base"
name = "Base"
rank = 0
threshold = 0
[[tiers]]
key = "plus"
name = "Plus"
rank = 1
threshold = 100
multiplier = 2
[[tiers]]
key = "top"
name = "Top"
rank = 2
threshold = 1000
multiplier = 3
"""


async def new_member(p, email: str | None = None) -> uuid.UUID:
    m = await members.enroll(p, members.Profile(email=email or f"{uuid.uuid4().hex[:12]}@example.com"))
    return m.id


async def state(member_id: uuid.UUID, kind: str = "POINTS") -> dict:
    rows = await connections.get("default").execute_query_dict(
        """SELECT w.balance, w.pending,
                  (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries e WHERE e.wallet_id = w.id) AS entries,
                  (SELECT COALESCE(SUM(remaining), 0) FROM lots l WHERE l.wallet_id = w.id
                     AND l.state = 'AVAILABLE') AS lots,
                  (SELECT COALESCE(SUM(remaining), 0) FROM lots l WHERE l.wallet_id = w.id
                     AND l.state = 'PENDING') AS pending_lots,
                  (SELECT COUNT(*) FROM lots l WHERE l.wallet_id = w.id AND l.remaining < 0) AS negative_lots
           FROM wallets w WHERE w.member_id = $1 AND w.kind = $2""",
        [member_id, kind],
    )
    return {k: int(v) for k, v in rows[0].items()}


async def buy(p, member_id, receipt: str, amount: str, **kw):
    return await purchases.record(
        p, member_id=member_id, external_id=receipt, amount=Decimal(amount), currency="EUR", channel="STORE", **kw
    )


async def rollups_rebuilt() -> None:
    """The per-day rollups (qualifying_days, purchase_days) emptied and rebuilt from the
    history by migration 0012's backfill, as an existing database gets them."""
    conn = connections.get("default")
    migration = importlib.import_module("domain.migrations.0012_standing")
    await conn.execute_query("TRUNCATE " + ", ".join(migration.DERIVED))
    for statement in migration.BACKFILL:
        await conn.execute_query(statement)


async def ledger_step(p, member_id, receipts: list, i: int, op: str, n: int) -> None:
    """One step of a random history (the ledger's property tests): earn, spend, refund,
    expire, or move the clock by hours or days. A step the rules refuse is refused with a
    precise code and changes nothing, so the history goes on."""
    try:
        if op == "earn":
            purchase, _ = await buy(p, member_id, f"{member_id}-{i}", str(n))
            receipts.append((purchase.external_id, purchase.amount))
        elif op == "spend":
            await wallets.adjust(
                p, member_id=member_id, points=-n, reason="spend", idempotency_key=f"{member_id}-{i}", by="t"
            )
        elif op == "refund" and receipts:
            receipt, amount = receipts[n % len(receipts)]
            await purchases.refund(p, external_id=receipt, amount=min(amount, Decimal(n)))
        elif op == "expire":
            await tiers.run_expiry(p)  # releases due pending points, then expires lots
        elif op == "hours":
            clock.advance(timedelta(hours=n))
        elif op == "days":
            clock.advance(timedelta(days=n))
    except DomainError as exc:
        assert exc.code in ("INSUFFICIENT_POINTS", "INVALID_INPUT"), exc


# -- counting the SQL a request sends (N+1 guards) ----------------------------------------


@contextlib.contextmanager
def counting_queries():
    seen: list[str] = []

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("tortoise.db_client")
    handler, level = Counter(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# -- the notification worker's runs -----------------------------------------------------

# The demo program, without quiet hours or caps: this run is about delivery.
DELIVERY_PROGRAM = (
    (Path(__file__).resolve().parents[1] / "domain" / "program" / "demo.toml")
    .read_text()
    .replace("quiet_hours = { start = 21:00:00, end = 09:00:00 }", "quiet_hours = { start = 00:00:00, end = 00:00:00 }")
)


# The fake FCM and the real firebase-admin client pointed at it: the notifications tests
# and the API's notification tests (tests/api/notifications) both send through them.
@pytest.fixture(scope="session")
async def fcm_server(tmp_path_factory):
    """The fake FCM in a thread of its own: google-auth fetches OAuth tokens with a
    blocking call, which would stall a server sharing the test's event loop."""
    fake = FakeFcm()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        await asyncio.sleep(0.01)
    path = tmp_path_factory.mktemp("firebase") / "service-account.json"
    path.write_text(json.dumps(service_account(f"http://127.0.0.1:{port}/token")))
    fake.endpoint = f"http://127.0.0.1:{port}"
    fake.credentials = path
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def fcm(fcm_server):
    fcm_server.reset()
    yield fcm_server


@pytest.fixture
async def sender(fcm):
    """The real firebase-admin client, pointed at the fake FCM (LOYALTY_FCM_ENDPOINT)."""
    s = FcmSender(fcm.credentials, endpoint=fcm.endpoint)
    yield s
    await s.close()
