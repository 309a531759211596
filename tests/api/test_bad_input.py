"""Hostile values in every argument of every operation, generated from the schema.

The schema is introspected (root fields of Query, Mutation and Subscription, and the
fields below them that take arguments), every argument and input-object field gets a
table of hostile values chosen by its GraphQL type, and each is sent with a token of
the role the field accepts while every other argument holds a value that works. No
answer may be INTERNAL_SERVER_ERROR / "Unexpected error.", and the server answers
afterwards. Nothing here lists operations or arguments by hand: a new field or
argument is covered the day it is added."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    get_named_type,
    is_required_argument,
    is_required_input_field,
)

from api.app import create_app
from api.auth import _RolePermission
from api.relay import to_global_id
from api.schema import build_schema
from domain import db
from domain.identity.tokens import AUDIENCE, ISSUER, Role
from domain.rewards import service as rewards
from tests.conftest import TEST_SECRET, Socket, count, enroll, member_uuid

SCHEMA = build_schema()
GRAPHQL = SCHEMA._schema
INTERNAL = ("INTERNAL_SERVER_ERROR", "Unexpected error")


def _b64(raw: str | bytes) -> str:
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


SOME_UUID = "7d7a2c3e-0f4b-4c9a-9a8e-2f6f1b0c9d11"
TEXT = [
    "\x00",
    "a\x00b",
    "\x07\x1b[31m",
    "\u202eevil\u202c",
    "\u2066x\u2069",
    "\u200b",
    "\ufeff",
    "\ud800",  # a lone surrogate: valid JSON, no valid UTF-8
    "x" * 10_000,
    "a" * 300,
    "²",
    "١٢٣",
    "\uff21\uff22\uff23\uff11\uff12\uff13",  # fullwidth ABC123
    "",
    "   ",
    "\r\n",
    "'; DROP TABLE members; --",
    "%s%n{0}",
    "a@b.c" + "x" * 5_000,
]
# Cursors and global IDs that decode to something nearly right.
OPAQUE = [
    "!!!",
    "====",
    _b64(b"\xff\xfe"),
    _b64(str(2**63)),
    _b64(str(10**400)),
    _b64("-1"),
    _b64("²"),
    _b64("1\x00"),
    _b64(f"2020-13-45T00:00:00+00:00|{SOME_UUID}"),
    _b64(f"0001-01-01T00:00:00+14:00|{SOME_UUID}"),
    _b64(f"9999-12-31T23:59:59-14:00|{SOME_UUID}"),
    _b64(f"2020-01-01T00:00:00|{SOME_UUID}"),
    _b64("2020-01-01T00:00:00+00:00|not-a-uuid"),
    _b64("a|b|c"),
    _b64("Member:\x00"),
    _b64("Member:" + "0" * 150),
    _b64(f"Reward:{SOME_UUID}"),
    _b64(f"Wallet:{SOME_UUID}"),
    _b64("Tier:" + "\u202e" * 20),
    _b64(":"),
]
WRONG = [2**63, 1.5, True, [], {}, None]
INT = [2**31, -(2**31) - 1, 2**63, 10**20, -1, 0, 2**31 - 1, -(2**31), "1", 1.5, True, None, []]
FLOAT = [1e308, -1e308, 5e-324, -0.0, float("inf"), float("nan"), 2**63, "1", True, None]
DECIMAL = [
    "10_000",
    "\uff11\uff10",  # fullwidth 10
    " 10 ",
    "NaN",
    "sNaN",
    "Infinity",
    "-0",
    "1e999999",
    "1E+1000000000",
    "0.000000001",
    "9" * 1000,
    "0x10",
    "",
    "abc",
    10.5,
    2**63,
    float("inf"),
    True,
    None,
]
BOOLEAN = ["true", 1, None, []]
DATE = ["2020-02-30", "99999-01-01", "0000-01-01", "0001-01-01", "9999-12-31", "", 20200101, "2020-01-01T00:00:00"]


def hostile(gtype: GraphQLInputType) -> list:
    """The hostile values for an input of this type (non-null or not: null is one of them)."""
    named = get_named_type(gtype)
    if isinstance(get_nullable(gtype), GraphQLList):
        return [[], [None], "x", [*hostile(named)[:3]]]
    if isinstance(named, GraphQLInputObjectType):
        return [{}, {"nope": 1}, "x", [], None]
    if isinstance(named, GraphQLEnumType):
        first = next(iter(named.values))
        return ["NOPE", first.lower(), "", 1, None]
    by_name = {
        "String": TEXT + OPAQUE + WRONG,
        "ID": TEXT + OPAQUE + WRONG,
        "Int": INT,
        "Float": FLOAT,
        "Boolean": BOOLEAN,
        "Decimal": DECIMAL,
        "Date": DATE,
        "DateTime": DATE,
    }
    assert named.name in by_name, f"no hostile values for scalar {named.name}: add them"
    return by_name[named.name]


def get_nullable(gtype):
    return gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype


@dataclass
class World:
    """What the working values point at: a member with a wallet and card, a reward."""

    member_id: str
    wallet_id: str
    reward_id: str
    card: str
    tokens: dict[Role, str]


def working(name: str, gtype: GraphQLInputType, world: World):
    """A value that works for an argument or input field, by its name, else by its type."""
    named = get_named_type(gtype)
    if isinstance(named, GraphQLInputObjectType):
        return {f: working(f, spec.type, world) for f, spec in named.fields.items() if is_required_input_field(spec)}
    by_field = {
        "memberId": world.member_id,
        "id": world.member_id,
        "rewardId": world.reward_id,
        "notificationId": to_global_id("Notification", SOME_UUID),
        "qrPayload": world.card,
        "email": f"probe-{uuid.uuid4().hex[:8]}@example.com",
        "currency": "EUR",
        "amount": "10.00",
        "timezone": "Europe/Paris",
        "locale": "en",
        "key": f"store-{uuid.uuid4().hex[:6]}",
        "fcmToken": "fcm-token-0123456789",
        "first": 5,
        "points": 1,
        "pointsCost": 10,
        "latitude": 48.85,
        "longitude": 2.35,
    }
    if name in by_field:
        return by_field[name]
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    return {"String": "probe", "ID": "probe", "Int": 1, "Float": 1.0, "Boolean": False, "Decimal": "1.00"}.get(
        named.name, "probe"
    )


@dataclass
class Case:
    """One field reached from a root field, with the argument (or input-field path) made hostile."""

    operation: str  # query, mutation or subscription
    path: list[tuple[str, GraphQLField]]  # root field first; the last one takes `argument`
    argument: str
    input_path: tuple[str, ...] = ()  # into an input object
    role: Role | None = None
    values: list = field(default_factory=list)
    type_name: str = ""  # the named GraphQL type of the target

    @property
    def target(self) -> str:
        return ".".join([self.path[-1][0], self.argument, *self.input_path])

    def document(self, world: World, value, literal: bool = False) -> tuple[str, dict]:
        """The operation and its variables; with `literal`, the hostile string is written
        into the document as a string literal (escapes and all) instead of a variable."""
        variables: dict = {}
        declared: list[str] = []
        name, last = self.path[-1]
        args = []

        def bind(var: str, gtype, given) -> str:
            declared.append(f"${var}: {gtype}")
            variables[var] = given
            return f"${var}"

        for arg_name, arg in last.args.items():
            if arg_name != self.argument and not is_required_argument(arg):
                continue
            if arg_name != self.argument:
                args.append(f"{arg_name}: {bind(f'a_{arg_name}', arg.type, working(arg_name, arg.type, world))}")
            elif not literal:
                given = working(arg_name, arg.type, world) if self.input_path else value
                if self.input_path:
                    given[self.input_path[0]] = value
                args.append(f"{arg_name}: {bind(f'a_{arg_name}', arg.type, given)}")
            elif self.input_path:  # the other input fields as variables, the target as a literal
                spec = get_named_type(arg.type)
                fields = [f"{self.input_path[0]}: {json.dumps(value)}"]
                for field_name, field_spec in spec.fields.items():
                    if field_name != self.input_path[0] and is_required_input_field(field_spec):
                        working_value = working(field_name, field_spec.type, world)
                        fields.append(f"{field_name}: {bind(f'f_{field_name}', field_spec.type, working_value)}")
                args.append(f"{arg_name}: {{ {', '.join(fields)} }}")
            else:
                args.append(f"{arg_name}: {json.dumps(value)}")
        inner = f"{name}({', '.join(args)})" + _selection(last.type)
        for outer_name, outer in reversed(self.path[:-1]):
            inner = f"{outer_name}{_wrap(outer.type, inner)}"
        header = f"({', '.join(declared)})" if declared else ""
        return f"{self.operation}{header} {{ {inner} }}", variables


def _selection(gtype) -> str:
    named = get_named_type(gtype)
    return " { __typename }" if isinstance(named, GraphQLObjectType | GraphQLInterfaceType) else ""


def _wrap(gtype, inner: str) -> str:
    named = get_named_type(gtype)
    if named.name.endswith("Connection"):
        return f" {{ edges {{ node {{ {inner} }} }} }}"
    return f" {{ {inner} }}"


def _roles() -> dict[tuple[str, str], Role | None]:
    """Who may call each root field, from its permission classes (None: anyone)."""
    out: dict[tuple[str, str], Role | None] = {}
    for root in ("Query", "Mutation", "Subscription"):
        definition = SCHEMA.get_type_by_name(root)
        for f in definition.fields:
            roles = [r for p in f.permission_classes if issubclass(p, _RolePermission) for r in p.roles]
            fitting = (Role.MEMBER if Role.MEMBER in roles else roles[0]) if roles else None
            out[(root, SCHEMA.config.name_converter.from_field(f))] = fitting
    return out


def _reachable_from_root() -> dict[str, list[tuple[str, GraphQLField]]]:
    """For each object type, the shortest path of fields without required arguments
    from a Query root field down to it (through connections' edges and nodes)."""
    query = GRAPHQL.query_type
    paths: dict[str, list[tuple[str, GraphQLField]]] = {}
    frontier = [(query, [])]
    while frontier:
        gtype, path = frontier.pop(0)
        for name, f in gtype.fields.items():
            if any(is_required_argument(a) for a in f.args.values()) or name in ("node", "edges", "pageInfo"):
                continue
            target = get_named_type(f.type)
            if target.name.endswith("Connection"):
                edge = get_named_type(target.fields["edges"].type)
                target = get_named_type(edge.fields["node"].type)
            if isinstance(target, GraphQLObjectType) and target.name not in paths:
                paths[target.name] = [*path, (name, f)]
                frontier.append((target, paths[target.name]))
    return paths


def cases() -> Iterator[Case]:
    roles = _roles()
    paths = _reachable_from_root()
    roots = {"query": GRAPHQL.query_type, "mutation": GRAPHQL.mutation_type, "subscription": GRAPHQL.subscription_type}
    for operation, root in roots.items():
        for name, f in root.fields.items():
            role = roles[(root.name, name)]
            yield from _cases_of(operation, [(name, f)], role)
    for type_name, gtype in GRAPHQL.type_map.items():
        if type_name.startswith("__") or gtype in roots.values() or not isinstance(gtype, GraphQLObjectType):
            continue
        for name, f in gtype.fields.items():
            if f.args:
                path = paths[type_name]  # KeyError: a type with arguments no query reaches
                role = roles[("Query", path[0][0])]
                yield from _cases_of("query", [*path, (name, f)], role)


def _cases_of(operation: str, path: list, role: Role | None) -> Iterator[Case]:
    _, f = path[-1]
    for arg_name, arg in f.args.items():
        named = get_named_type(arg.type)
        yield Case(operation, path, arg_name, role=role, values=hostile(arg.type), type_name=named.name)
        if isinstance(named, GraphQLInputObjectType):
            for field_name, spec in named.fields.items():
                values = hostile(spec.type)
                yield Case(operation, path, arg_name, (field_name,), role, values, get_named_type(spec.type).name)


CASES = list(cases())


@pytest.fixture
async def world(app, gql, tokens) -> World:
    ana = await enroll(gql, tokens, "ana@example.com", displayName="Ana")
    token = tokens.member(member_uuid(ana["id"]))
    me = await gql("{ me { wallets { id } } memberCard { qrPayload } }", token=token)
    reward = await rewards.create(app.state.services.program, name="Coffee", points_cost=10)
    return World(
        member_id=ana["id"],
        wallet_id=me["data"]["me"]["wallets"][0]["id"],
        reward_id=to_global_id("Reward", reward.id),
        card=me["data"]["memberCard"]["qrPayload"],
        tokens={Role.MEMBER: token, Role.STAFF: tokens.staff(), Role.MARKETER: tokens.marketer()},
    )


def test_the_table_covers_every_argument_of_the_schema():
    """Every argument and input field of the schema is a target, with a table fitting its type."""
    targets = {c.target for c in CASES}
    assert {"enrollMember.input.referralCode", "entries.after", "walletUpdated.after", "node.id"} <= targets
    expected = 0
    for gtype in GRAPHQL.type_map.values():
        if isinstance(gtype, GraphQLObjectType) and not gtype.name.startswith("__"):
            for f in gtype.fields.values():
                for arg in f.args.values():
                    named = get_named_type(arg.type)
                    expected += 1 + (len(named.fields) if isinstance(named, GraphQLInputObjectType) else 0)
    assert len(CASES) == expected
    assert all(c.values for c in CASES)


def _body(query: str, variables: dict) -> bytes:
    # allow_nan: Infinity and NaN are what a hostile client sends; Python's json reads them
    return json.dumps({"query": query, "variables": variables}, allow_nan=True).encode()


def _internal(text: str) -> bool:
    return any(marker in text for marker in INTERNAL)


def _requests() -> Iterator[tuple[Case, object, bool]]:
    """Every hostile value of every query and mutation case as a variable, and the
    text ones of String and ID targets also as literals in the document."""
    for case in CASES:
        if case.operation == "subscription":
            continue
        for value in case.values:
            yield case, value, False
        if case.type_name in ("String", "ID"):
            for value in TEXT:
                yield case, value, True


async def test_no_hostile_value_is_an_internal_error(client, gql, world, monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")  # never Google's servers
    failures = []
    started = time.monotonic()
    sent = 0
    for case, value, literal in _requests():
        query, variables = case.document(world, value, literal)
        headers = {"content-type": "application/json"}
        if case.role is not None:
            headers["authorization"] = f"Bearer {world.tokens[case.role]}"
        response = await client.post("/graphql", content=_body(query, variables), headers=headers)
        sent += 1
        if response.status_code >= 500 or _internal(response.text):
            where = f"{case.target} ({'literal' if literal else 'variable'})"
            failures.append((where, repr(value)[:60], response.status_code, response.text[:300]))
    assert not failures, f"{len(failures)} of {sent} answered as internal errors:\n" + "\n".join(map(str, failures))
    assert (await client.get("/healthz")).status_code == 200
    me = await gql("{ me { email } }", token=world.tokens[Role.MEMBER])
    assert me == {"data": {"me": {"email": "ana@example.com"}}}
    assert time.monotonic() - started < 120


async def test_no_hostile_value_breaks_a_subscription(live_server, gql, world):
    """Over a real WebSocket: each hostile value gets an error or runs; none is internal
    and no socket drops without a close code."""
    failures = []
    subscriptions = [c for c in CASES if c.operation == "subscription"]
    assert subscriptions
    for case in subscriptions:
        for start in range(0, len(case.values), 10):  # at most 10 subscriptions per socket
            batch = case.values[start : start + 10]
            sock = await Socket.open(live_server, world.tokens[case.role])
            for value in batch:
                query, variables = case.document(world, value)
                sock.next_id += 1
                message = {"query": query, "variables": variables}
                await sock.ws.send(
                    json.dumps({"id": str(sock.next_id), "type": "subscribe", "payload": message}, allow_nan=True)
                )
            deadline = asyncio.get_running_loop().time() + 0.5
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    message = await sock.receive(left)
                except TimeoutError:
                    break
                if _internal(json.dumps(message)):
                    failures.append((case.target, message))
            assert sock.ws.close_code is None, (case.target, sock.ws.close_code, sock.ws.close_reason)
            await sock.close()
    assert not failures, failures
    me = await gql("{ me { email } }", token=world.tokens[Role.MEMBER])
    assert me == {"data": {"me": {"email": "ana@example.com"}}}


# -- the cases found from outside, one by one ---------------------------------------------

ADJUST = (
    "mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { wallet { balance } userErrors { code } } }"
)
MEMBERS = "query($s: String) { members(search: $s) { edges { node { email memberNumber } } } }"


def _only_error(result: dict) -> dict:
    assert result.get("data") is None or not any(result["data"].values()), result
    assert len(result["errors"]) == 1, result
    return result["errors"][0]


async def test_staff_find_a_member_by_a_long_email_or_a_loosely_typed_number(gql, tokens):
    """The term was also compared with the 16-character member-number column: every email
    over 16 characters was an internal error."""
    await enroll(gql, tokens, "bo@example.com")
    ana = await enroll(gql, tokens, "ana.longname@example.com")
    for term in ("ana.longname@example.com", " Ana.LongName@Example.com ", ana["memberNumber"]):
        found = await gql(MEMBERS, {"s": term}, token=tokens.staff())
        assert [e["node"]["email"] for e in found["data"]["members"]["edges"]] == ["ana.longname@example.com"], term
    typed = "-".join([ana["memberNumber"][:5], ana["memberNumber"][5:]]).lower().replace("0", "o")
    found = await gql(MEMBERS, {"s": typed}, token=tokens.marketer())
    assert [e["node"]["memberNumber"] for e in found["data"]["members"]["edges"]] == [ana["memberNumber"]]
    for nobody in ("nobody@example.com", "x" * 5_000 + "@example.com", "not a number", "0123456789ABCDEF0"):
        assert await gql(MEMBERS, {"s": nobody}, token=tokens.staff()) == {"data": {"members": {"edges": []}}}


@pytest.mark.parametrize("search", ["x" * 10_000, "ana\x00@example.com"], ids=["10,000 characters", "NUL"])
async def test_a_search_that_is_not_text_is_invalid_input(gql, tokens, search):
    error = _only_error(await gql(MEMBERS, {"s": search}, token=tokens.staff()))
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": "$s"}


async def test_a_ledger_cursor_beyond_bigint_is_invalid_input(gql, tokens, world):
    for raw in (str(2**63), "²", "-1", "1" * 25):
        result = await gql(
            "query($id: ID!, $after: String) { node(id: $id) { ... on Wallet { entries(after: $after) { "
            "edges { cursor } } } } }",
            {"id": world.wallet_id, "after": _b64(raw)},
            token=world.tokens[Role.MEMBER],
        )
        assert [e["extensions"]["code"] for e in result["errors"]] == ["INVALID_INPUT"], (raw, result)
    last = str(2**63 - 1)  # the largest cursor there can be: a page of everything before it
    result = await gql(
        "query($id: ID!, $after: String) { node(id: $id) { ... on Wallet { entries(after: $after) { "
        "edges { node { kind } } } } } }",
        {"id": world.wallet_id, "after": _b64(last)},
        token=world.tokens[Role.MEMBER],
    )
    assert result["data"]["node"]["entries"]["edges"] == [{"node": {"kind": "BONUS"}}]


async def test_a_wallet_subscription_cursor_of_superscript_two_is_invalid_input(live_server, world):
    sock = await Socket.open(live_server, world.tokens[Role.MEMBER])
    await sock.subscribe(
        "subscription($after: String) { walletUpdated(after: $after) { cursor } }", {"after": _b64("²")}
    )
    message = await sock.receive()
    assert message["type"] == "next", message
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["INVALID_INPUT"], message
    await sock.close()


@pytest.mark.parametrize(
    ("mutation", "input_type", "given", "field", "table"),
    [
        (
            "adjustPoints",
            "AdjustPointsInput",
            {"points": 5, "reason": "goodwill\x00", "idempotencyKey": "k"},
            "reason",
            "ledger_entries",
        ),
        ("redeemCoupon", "RedeemCouponInput", {"code": "ABCD-\x00"}, "code", "coupons"),
        ("createReward", "CreateRewardInput", {"name": "Cof\x00fee", "pointsCost": 5}, "name", "rewards"),
        (
            "addStore",
            "AddStoreInput",
            {"key": "k1", "name": "Shop\x00", "latitude": 1.0, "longitude": 1.0},
            "name",
            "stores",
        ),
        (
            "addStore",
            "AddStoreInput",
            {"key": "k2", "name": "Shop", "latitude": 1.0, "longitude": 1.0, "message": "Hi\x00"},
            "message",
            "stores",
        ),
    ],
    ids=["adjustPoints.reason", "redeemCoupon.code", "createReward.name", "addStore.name", "addStore.message"],
)
async def test_a_nul_byte_never_reaches_postgresql(gql, database, world, mutation, input_type, given, field, table):
    if "memberId" in SCHEMA._schema.type_map[input_type].fields:
        given = {**given, "memberId": world.member_id}
    role = {"adjustPoints": Role.STAFF, "redeemCoupon": Role.STAFF}.get(mutation, Role.MARKETER)
    before = await count(database, table)
    result = await gql(
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ userErrors {{ code }} }} }}",
        {"input": given},
        token=world.tokens[role],
    )
    error = _only_error(result)
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": f"$input.{field}"}
    assert "U+0000" in error["message"]
    assert await count(database, table) == before


async def test_a_nul_byte_in_a_document_literal_is_invalid_input(gql, database, world):
    result = await gql(
        'mutation { createReward(input: { name: "Cof\\u0000fee", pointsCost: 5 }) { userErrors { code } } }',
        token=world.tokens[Role.MARKETER],
    )
    assert _only_error(result)["extensions"]["code"] == "INVALID_INPUT"
    assert await count(database, "rewards") == 1  # the world's


async def test_a_long_referral_code_is_not_one_of_ours(gql, tokens, database):
    for code in ("ABCDEFGHJKMNP", "x" * 300, "ABCDE FGHJ"):
        result = await gql(
            "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) { member { id } "
            "userErrors { code field } } }",
            {"input": {"email": "new@example.com", "referralCode": code}},
            token=tokens.staff(),
        )
        assert result["data"]["enrollMember"] == {
            "member": None,
            "userErrors": [{"code": "INVALID_INPUT", "field": "referralCode"}],
        }, code
    assert await count(database, "members") == 0


UNREGISTER = "mutation($t: String!) { unregisterDevice(input: { fcmToken: $t }) { removed userErrors { code field } } }"
REGISTER = (
    "mutation($t: String!) { registerDevice(input: { fcmToken: $t, platform: IOS }) { device { id } "
    "userErrors { code field } } }"
)


async def test_a_5000_character_device_token_is_invalid_input(gql, world):
    result = await gql(UNREGISTER, {"t": "t" * 5_000}, token=world.tokens[Role.MEMBER])
    assert result["data"]["unregisterDevice"] == {
        "removed": False,
        "userErrors": [{"code": "INVALID_INPUT", "field": "fcmToken"}],
    }


async def test_registering_a_device_for_a_member_deleted_since_is_not_found(gql, database, world):
    conn = await db.raw_connection(database.credentials)
    try:
        await conn.execute("DELETE FROM members WHERE id = $1", member_uuid(world.member_id))
    finally:
        await conn.close()
    result = await gql(REGISTER, {"t": "fcm-token-0123456789"}, token=world.tokens[Role.MEMBER])
    assert result["data"]["registerDevice"] == {
        "device": None,
        "userErrors": [{"code": "NOT_FOUND", "field": "memberId"}],
    }
    assert await count(database, "devices") == 0


def _token(**claims) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "till-1", "role": "staff", "iat": now, "exp": now + 600}
    return jwt.encode({**base, **claims}, TEST_SECRET, algorithm="HS256")


async def test_a_token_expiring_in_year_10_to_the_20_is_unauthenticated(client, gql, live_server):
    token = _token(exp=10**20)
    result = await gql(MEMBERS, {"s": None}, token=token)
    assert _only_error(result)["extensions"]["code"] == "UNAUTHENTICATED"
    # over WebSocket: refused with 4403 at connection_init, not a dropped socket
    import websockets

    async with websockets.connect(f"ws://{live_server}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
        assert ws.close_code == 4403


async def test_firebase_sign_in_on_a_server_without_firebase_is_unauthenticated(database, settings, monkeypatch):
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    bare = create_app(settings.model_copy(update={"firebase_project_id": None}), database=database, manage_orm=False)
    async with bare.router.lifespan_context(bare):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bare), base_url="http://bare") as c:
            response = await c.post(
                "/graphql",
                json={"query": 'mutation { signInWithFirebase(input: { idToken: "x.y.z" }) { accessToken } }'},
            )
    error = _only_error(response.json())
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "LOYALTY_" not in error["message"]  # the server's configuration is not the client's business
    assert await count(database, "members") == 0


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
        b"[" * 10_000,
        b'{"query": "{ __typename \xff\xfe }"}',
        '{"query": "{ __typename }"}'.encode("utf-16"),
        b'{"query": ',
    ],
    ids=["variables 10,000 deep", "10,000 open brackets", "invalid UTF-8", "UTF-16", "cut short"],
)
async def test_a_body_that_is_not_json_is_a_json_400_with_a_code(client, body):
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["errors"][0]["extensions"] == {"code": "INVALID_JSON"}
    assert response.headers["x-request-id"]
    assert (await client.get("/healthz")).text == "ok"


async def test_get_variables_nested_2000_deep_are_a_json_400(client):
    deep = "[" * 2_000 + "]" * 2_000  # as deep as fits the 16 KB query string, percent-encoded
    response = await client.get("/graphql", params={"query": "{ __typename }", "variables": deep})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "INVALID_JSON"}
