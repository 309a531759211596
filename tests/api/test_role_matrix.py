"""Every operation x every role, generated from the schema: each root field's permission
classes say who may call it; every other role gets FORBIDDEN, no token UNAUTHENTICATED,
and nothing is written. The roles each permission class admits are stated here, apart
from api/auth.py, so that a class letting the wrong role through is caught."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    Undefined,
    get_named_type,
)

from api.auth import IsMarketer, IsMember, IsMemberOrMarketer, IsSignedIn, IsStaff, IsStaffOrMarketer
from api.schema import build_schema
from domain import db
from domain.identity.tokens import Role
from tests.conftest import Socket, enrolled, error_codes

SCHEMA = build_schema()._schema
ROLES = (Role.MEMBER, Role.STAFF, Role.MARKETER)

# What each permission class means, written down independently of its code.
ADMITS = {
    IsMember: {Role.MEMBER},
    IsStaff: {Role.STAFF},
    IsMarketer: {Role.MARKETER},
    IsStaffOrMarketer: {Role.STAFF, Role.MARKETER},
    IsMemberOrMarketer: {Role.MEMBER, Role.MARKETER},
    IsSignedIn: set(ROLES),
}
# Open to anyone: the credential travels in the input (a Firebase ID token, a refresh token),
# or the answer is the same for everyone (the program: tiers, stores, catalogue).
PUBLIC = {"signInWithFirebase", "refreshSession", "signOut", "program"}

# Values that pass argument coercion, so that a call reaches the permission check.
SCALARS = {
    "String": "x",
    "ID": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": True,
    "Decimal": "1.00",
    "Date": "2000-01-01",
    "DateTime": "2030-01-01T00:00:00+00:00",
}


def _strawberry(field):
    return field.extensions["strawberry-definition"]


def _value(type_):
    """A minimal valid value: required input fields only, a default per scalar."""
    if isinstance(type_, GraphQLNonNull):
        return _value(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [_value(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _value(f.type)
            for name, f in type_.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        }
    assert isinstance(type_, GraphQLScalarType)
    assert type_.name in SCALARS, f"no default value for the scalar {type_.name}: add one to SCALARS"
    return SCALARS[type_.name]


class Operation:
    """One root field, called with its required arguments and the least selection."""

    def __init__(self, kind: str, name: str, field) -> None:
        self.kind, self.name = kind, name
        classes = _strawberry(field).permission_classes
        unknown = [c.__name__ for c in classes if c not in ADMITS]
        assert not unknown, f"{name}: say in ADMITS which roles {unknown} admit"
        self.admits = set(ROLES)
        for c in classes:
            self.admits &= ADMITS[c]
        self.declared = bool(classes)
        required = {
            a: arg
            for a, arg in field.args.items()
            if isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined
        }
        head = f"({', '.join(f'${a}: {arg.type}' for a, arg in required.items())})" if required else ""
        call = f"({', '.join(f'{a}: ${a}' for a in required)})" if required else ""
        selection = (
            "" if isinstance(get_named_type(field.type), GraphQLScalarType | GraphQLEnumType) else " { __typename }"
        )
        self.document = f"{kind}{head} {{ {name}{call}{selection} }}"
        self.variables = {a: _value(arg.type) for a, arg in required.items()}

    def __repr__(self) -> str:
        return self.name


OPERATIONS = [
    Operation(kind, name, field)
    for kind, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type))
    for name, field in root.fields.items()
]
SUBSCRIPTIONS = [Operation("subscription", name, field) for name, field in SCHEMA.subscription_type.fields.items()]


def test_every_field_says_who_may_call_it():
    """A root field without a permission class is open to anyone: only the sign-in
    mutations may be. Fields below the roots declare none, so the roots are the gates."""
    undeclared = {op.name for op in OPERATIONS + SUBSCRIPTIONS if not op.declared}
    assert undeclared == PUBLIC
    roots = {SCHEMA.query_type, SCHEMA.mutation_type, SCHEMA.subscription_type}
    gated = [
        f"{t.name}.{name}"
        for t in SCHEMA.type_map.values()
        if isinstance(t, GraphQLObjectType) and t not in roots and not t.name.startswith("__")
        for name, f in t.fields.items()
        if "strawberry-definition" in f.extensions and _strawberry(f).permission_classes
    ]
    assert gated == [], "a nested field checks roles: extend the matrix to reach it"


@pytest.fixture
async def token_for(gql, tokens):
    member = await enrolled(gql, tokens, "ana@example.com")
    return {Role.MEMBER: member.token, Role.STAFF: tokens.staff(), Role.MARKETER: tokens.marketer()}


async def rows(database, tables: list[str]) -> dict[str, int]:
    conn = await db.raw_connection(database.credentials)
    try:
        counts = await conn.fetchrow("SELECT " + ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables))
    finally:
        await conn.close()
    return dict(counts)


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.declared], ids=repr)
async def test_each_role_it_does_not_admit_is_forbidden_and_writes_nothing(gql, token_for, database, tables, op):
    before = await rows(database, tables)
    refused = {None: "UNAUTHENTICATED", **{role: "FORBIDDEN" for role in ROLES if role not in op.admits}}
    for role, code in refused.items():
        result = await gql(op.document, op.variables, token=token_for[role] if role else None)
        assert error_codes(result) == [code], (role, result)
        assert result.get("data") in (None, {op.name: None}), (role, result)
    assert await rows(database, tables) == before

    # The other side: the roles it admits get past the check (the matrix can fail), and
    # the arguments above were valid, so the refusals were the permission check's.
    for role in op.admits:
        result = await gql(op.document, op.variables, token=token_for[role])
        codes = error_codes(result)
        assert not {"FORBIDDEN", "UNAUTHENTICATED"} & set(codes), (role, result)
        assert None not in codes, (role, result)  # no validation or coercion error


@pytest.mark.parametrize("op", SUBSCRIPTIONS, ids=repr)
async def test_each_role_a_subscription_does_not_admit_is_forbidden(live_server, app, token_for, database, tables, op):
    before = await rows(database, tables)
    for role in ROLES:
        sock = await Socket.open(live_server, token_for[role])
        try:
            await sock.subscribe(op.document, op.variables)
            if role in op.admits:  # it starts: the broker holds it
                broker = app.state.services.broker
                for _ in range(200):
                    if broker.subscription_count:
                        break
                    await asyncio.sleep(0.01)
                assert broker.subscription_count == 1, role
            else:
                message = await sock.receive(timeout=2)
                assert message["type"] == "error", (role, message)
                assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"], (role, message)
        finally:
            await sock.close()

    # No token: refused at connection_init, before any subscription can start.
    ws = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=["graphql-transport-ws"])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 2)
    assert closed.value.rcvd.code == 4403
    assert await rows(database, tables) == before
