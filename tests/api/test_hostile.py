"""The bad-input matrix: every resolver a client can reach, with every way of
presenting a bad token, the wrong role, someone else's ID, malformed IDs and values,
and documents built to hurt the server. Each case gets its precise error, writes
nothing, and the server keeps answering afterwards."""

from __future__ import annotations

import base64
import json
import warnings
from datetime import timedelta

import jwt
import pytest

from domain import clock
from domain.identity.tokens import AUDIENCE, ISSUER, Role, TokenIssuer
from tests.conftest import TEST_SECRET, count, enroll, error_codes, member_uuid

ME = "{ me { id email preferences { pushMarketing } } }"
NODE = "query($id: ID!) { node(id: $id) { id ... on Member { email memberNumber } } }"
ENROLL = (
    "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) "
    "{ member { id } userErrors { code field message } } }"
)


class Resolver:
    """One field a client can call: its document, its variables, and who may call it."""

    def __init__(self, field: str, document: str, role: Role | None, nullable: bool, variables=None) -> None:
        self.field = field
        self.document = document
        self.role = role  # None: any signed-in role
        self.nullable = nullable
        self.variables = variables or (lambda ana: {})

    def __repr__(self) -> str:
        return self.field


RESOLVERS = [
    Resolver("enrollMember", ENROLL, Role.STAFF, False, lambda ana: {"input": {"email": "new@example.com"}}),
    Resolver("me", ME, Role.MEMBER, False),
    Resolver("memberCard", "{ memberCard { qrPayload expiresAt } }", Role.MEMBER, False),
    Resolver(
        "memberByCard",
        "query($p: String!) { memberByCard(qrPayload: $p) { id email } }",
        Role.STAFF,
        True,
        lambda ana: {"p": ana["card"]},
    ),
    Resolver(
        "updatePreferences",
        "mutation { updatePreferences(input: { pushMarketing: true }) "
        "{ member { id preferences { pushMarketing } } userErrors { code } } }",
        Role.MEMBER,
        False,
    ),
    Resolver("node", NODE, None, True, lambda ana: {"id": ana["id"]}),
]
BY_FIELD = {r.field: r for r in RESOLVERS}


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(role: Role, subject: str, drop: str | None = None) -> dict:
    now = int(clock.now().timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role.value, "iat": now, "exp": now + 600}
    return {k: v for k, v in claims.items() if k != drop}


def _signed(claims: dict, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():  # PyJWT warns that our key is short for SHA-512
        warnings.simplefilter("ignore")
        return jwt.encode(claims, TEST_SECRET, algorithm=algorithm)


def _without(claim: str):
    return lambda role, subject: f"Bearer {_signed(_claims(role, subject, drop=claim))}"


# Each builds the Authorization header (None: no header) for a token that is right in
# every way but one, for the role and subject the resolver would otherwise accept.
BAD_AUTHORIZATION = {
    "no header": lambda role, subject: None,
    "expired": lambda role, subject: (
        f"Bearer {TokenIssuer(TEST_SECRET.encode()).mint(role, subject, ttl=timedelta(seconds=-60))[0]}"
    ),
    "another key": lambda role, subject: (
        f"Bearer {TokenIssuer(b'other-key-that-is-also-long-enough-for-hs256').mint(role, subject)[0]}"
    ),
    "alg none": lambda role, subject: f"Bearer {_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(role, subject))}.",
    "HS512 with our key": lambda role, subject: f"Bearer {_signed(_claims(role, subject), 'HS512')}",
    **{f"no {claim}": _without(claim) for claim in ("exp", "iat", "iss", "aud", "sub", "role")},
    "Basic scheme": lambda role, subject: "Basic xyz",
    "Bearer without a token": lambda role, subject: "Bearer ",
}


@pytest.fixture
async def ana(gql, tokens) -> dict:
    """A member with a card: what a forged token would try to reach."""
    member = await enroll(gql, tokens, "ana@example.com", displayName="Ana")
    token = tokens.member(member_uuid(member["id"]))
    card = await gql("{ memberCard { qrPayload } }", token=token)
    return {
        **member,
        "uuid": member_uuid(member["id"]),
        "token": token,
        "card": card["data"]["memberCard"]["qrPayload"],
    }


async def post(client, document: str, variables: dict, authorization: str | None) -> dict:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def still_serving(client, gql, database, ana: dict, members: int = 1) -> None:
    """Nothing was written, and the server answers health checks and a valid request."""
    assert await count(database, "members") == members
    assert (await client.get("/healthz")).status_code == 200
    me = await gql(ME, token=ana["token"])
    assert "errors" not in me, me
    # updatePreferences was refused every time: consent is still off
    assert me["data"]["me"] == {"id": ana["id"], "email": "ana@example.com", "preferences": {"pushMarketing": False}}


def _refused(result: dict, resolver: Resolver) -> None:
    """The field resolved to nothing: null where the schema allows it, else no data at all."""
    assert result.get("data") == ({resolver.field: None} if resolver.nullable else None), result
    text = json.dumps(result)
    assert "ana@example.com" not in text and "qrPayload" not in text


@pytest.mark.parametrize("case", list(BAD_AUTHORIZATION))
@pytest.mark.parametrize("resolver", RESOLVERS, ids=repr)
async def test_a_bad_token_is_unauthenticated_everywhere(client, gql, database, ana, resolver, case):
    role = resolver.role or Role.MEMBER
    subject = str(ana["uuid"]) if role is Role.MEMBER else "till-1"
    authorization = BAD_AUTHORIZATION[case](role, subject)
    result = await post(client, resolver.document, resolver.variables(ana), authorization)
    assert error_codes(result) == ["UNAUTHENTICATED"], result
    _refused(result, resolver)
    await still_serving(client, gql, database, ana)


async def test_the_same_requests_with_a_good_token_succeed(client, gql, tokens, database, ana):
    """The matrix above can fail: each resolver answers when the token is right."""
    good = {Role.MEMBER: ana["token"], Role.STAFF: tokens.staff()}
    for resolver in RESOLVERS:
        if resolver.field == "updatePreferences":
            continue  # it would write: still_serving checks that consent stays off
        token = good[resolver.role or Role.MEMBER]
        result = await post(client, resolver.document, resolver.variables(ana), f"Bearer {token}")
        assert "errors" not in result, (resolver, result)
        assert result["data"][resolver.field] is not None, resolver
    await still_serving(client, gql, database, ana, members=2)  # enrollMember enrolled new@example.com


@pytest.mark.parametrize(
    ("field", "role"),
    [
        ("enrollMember", Role.MEMBER),
        ("enrollMember", Role.MARKETER),
        ("memberByCard", Role.MEMBER),
        ("memberByCard", Role.MARKETER),
        ("me", Role.STAFF),
        ("me", Role.MARKETER),
        ("memberCard", Role.STAFF),
        ("updatePreferences", Role.STAFF),
        ("updatePreferences", Role.MARKETER),
    ],
)
async def test_the_wrong_role_is_forbidden(client, gql, tokens, database, ana, field, role):
    token = {Role.MEMBER: ana["token"], Role.STAFF: tokens.staff(), Role.MARKETER: tokens.marketer()}[role]
    resolver = BY_FIELD[field]
    result = await post(client, resolver.document, resolver.variables(ana), f"Bearer {token}")
    assert error_codes(result) == ["FORBIDDEN"], result
    _refused(result, resolver)
    await still_serving(client, gql, database, ana)


async def test_a_member_never_reaches_another_member_through_node(client, gql, tokens, database, ana):
    bo = await enroll(gql, tokens, "bo@example.com", displayName="Bo")
    bo_wallet = await gql(
        "query($id: ID!) { node(id: $id) { ... on Member { wallets { id } } } }", {"id": bo["id"]}, token=tokens.staff()
    )
    bo_wallet = bo_wallet["data"]["node"]["wallets"][0]["id"]

    for other in (bo["id"], bo_wallet):
        result = await gql(
            "query($id: ID!) { node(id: $id) { id ... on Member { email memberNumber displayName } "
            "... on Wallet { balance } } }",
            {"id": other},
            token=ana["token"],
        )
        # the same answer as for an ID that does not exist: nothing tells it is there
        assert result == {"data": {"node": None}}, result
        assert "bo@example.com" not in json.dumps(result) and bo["memberNumber"] not in json.dumps(result)

    own = await gql(NODE, {"id": ana["id"]}, token=ana["token"])
    assert own["data"]["node"]["email"] == "ana@example.com"
    await still_serving(client, gql, database, ana, members=2)


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
async def test_staff_and_marketers_fetch_any_member_through_node(client, gql, tokens, database, ana, role):
    token = tokens.staff() if role is Role.STAFF else tokens.marketer()
    result = await gql(NODE, {"id": ana["id"]}, token=token)
    assert result == {
        "data": {"node": {"id": ana["id"], "email": "ana@example.com", "memberNumber": ana["memberNumber"]}}
    }
    await still_serving(client, gql, database, ana)


@pytest.mark.parametrize(
    ("global_id", "code"),
    [
        pytest.param("!!!", "INVALID_INPUT", id="not base64"),
        pytest.param("", "INVALID_INPUT", id="empty"),
        pytest.param(_b64(b"Member"), "INVALID_INPUT", id="no colon"),
        pytest.param(_b64(b"Member:"), "INVALID_INPUT", id="no key"),
        pytest.param(_b64(b":1"), "INVALID_INPUT", id="no type"),
        pytest.param(_b64(b"\xff\xfe:1"), "INVALID_INPUT", id="not utf-8"),
        pytest.param(_b64(b"Member:not-a-uuid"), None, id="member key not a uuid"),
        pytest.param(_b64(b"Nope:1"), None, id="unknown type"),
        pytest.param(_b64(b"Wallet:00000000-0000-0000-0000-000000000000"), None, id="no such wallet"),
        pytest.param("x" * 1_024, "INVALID_INPUT", id="1 KB"),
    ],
)
@pytest.mark.parametrize("role", [Role.MEMBER, Role.STAFF])
async def test_malformed_global_ids_get_a_precise_answer(client, gql, tokens, database, ana, global_id, code, role):
    token = ana["token"] if role is Role.MEMBER else tokens.staff()
    result = await gql(NODE, {"id": global_id}, token=token)
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(result)
    assert result["data"] == {"node": None}
    assert error_codes(result) == ([code] if code else []), result
    if code:
        assert len(result["errors"][0]["message"]) < 200  # a 10 KB ID is not echoed back
    await still_serving(client, gql, database, ana)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "ana@"}, "email"),
        ({"email": "@example.com"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "ok@example.com", "birthday": "future"}, "birthday"),
    ],
)
async def test_enrolling_with_a_bad_email_or_a_future_birthday_is_invalid_input(
    client, gql, tokens, database, ana, given, field
):
    if given.get("birthday") == "future":
        given = {**given, "birthday": (clock.now() + timedelta(days=2)).date().isoformat()}
    result = await gql(ENROLL, {"input": given}, token=tokens.staff())
    payload = result["data"]["enrollMember"]
    assert payload["member"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_INPUT", field)]
    await still_serving(client, gql, database, ana)


async def test_a_member_cannot_set_a_birthday_in_the_future(client, gql, database, ana):
    tomorrow = (clock.now() + timedelta(days=2)).date().isoformat()
    result = await gql(
        "mutation($b: Date) { updateProfile(input: { birthday: $b }) "
        "{ member { birthday } userErrors { code field } } }",
        {"b": tomorrow},
        token=ana["token"],
    )
    assert result["data"]["updateProfile"] == {
        "member": None,
        "userErrors": [{"code": "INVALID_INPUT", "field": "birthday"}],
    }
    me = await gql("{ me { birthday } }", token=ana["token"])
    assert me["data"]["me"]["birthday"] is None
    await still_serving(client, gql, database, ana)


async def test_a_megabyte_variable_is_refused_before_anything_parses_it(client, gql, tokens, database, ana):
    body = {"query": ENROLL, "variables": {"input": {"email": "a" * 1_000_000 + "@example.com"}}}
    response = await client.post("/graphql", json=body, headers={"Authorization": f"Bearer {tokens.staff()}"})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    await still_serving(client, gql, database, ana)


def _deep(levels: int) -> str:
    """A mutation `levels` fields deep. The schema has no cycles (its deepest selection
    is 9 levels), so the inner fields repeat: the depth limiter must say why it is refused."""
    path = (["tier", "current"] * levels)[: levels - 3]
    inner = " { ".join([*path, "name"]) + " }" * len(path)
    return f'mutation {{ enrollMember(input: {{ email: "deep@example.com" }}) {{ member {{ {inner} }} }} }}'


HOSTILE_DOCUMENTS = {
    "30 levels deep": (_deep(30), "exceeds maximum operation depth of 12"),
    "500 aliases": ("mutation { " + " ".join(f"a{i}: __typename" for i in range(500)) + " }", "500 aliases found"),
    "31 enrolments under aliases": (
        "mutation { "
        + " ".join(
            f'a{i}: enrollMember(input: {{ email: "a{i}@x.com" }}) {{ userErrors {{ code }} }}' for i in range(31)
        )
        + " }",
        "31 aliases found. Allowed: 30",
    ),
    "5,000 tokens": (
        'mutation { enrollMember(input: { email: "long@example.com" }) { userErrors { code } } '
        + "__typename " * 5_000
        + "}",
        "tokens",
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE_DOCUMENTS))
async def test_hostile_documents_are_refused_before_they_run(client, gql, tokens, database, ana, name):
    document, message = HOSTILE_DOCUMENTS[name]
    result = await gql(document, token=tokens.staff())
    assert result.get("data") is None, result
    assert any(message in e["message"] for e in result["errors"]), result["errors"][:3]
    await still_serving(client, gql, database, ana)


async def test_the_limits_leave_room_for_real_documents(client, gql, tokens, database, ana):
    """30 aliases and a 9-level selection (the schema's deepest) still run."""
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + " }"
    result = await gql(aliases, token=ana["token"])
    assert "errors" not in result and len(result["data"]) == 30
    deepest = (
        "{ members(first: 1) { edges { node { wallets { entries(first: 1) { edges { node "
        "{ explanation { rule } } } } } } } } }"
    )
    result = await gql(deepest, token=tokens.staff())
    assert "errors" not in result, result
    await still_serving(client, gql, database, ana)
