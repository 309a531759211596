"""App sign-in with Firebase ID tokens, verified by firebase-admin in its Auth-emulator
mode (offline: unsigned tokens, but aud, iss and exp still checked), and refresh-token
rotation with reuse detection."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from domain import clock
from tests.conftest import REFRESH, SIGN_IN, SIGN_OUT, count, enroll, error_codes, id_token


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


async def sign_in(gql, token: str) -> dict:
    return await gql(SIGN_IN, {"t": token})


async def test_first_sign_in_enrols_and_the_next_finds_the_same_member(gql, database):
    first = (await sign_in(gql, id_token("uid-ana", email="Ana@Example.com", name="Ana")))["data"]["signInWithFirebase"]
    assert first["userErrors"] == [] and first["member"]["email"] == "ana@example.com"
    assert first["member"]["displayName"] == "Ana"
    me = await gql("{ me { id } }", token=first["accessToken"])
    assert me["data"]["me"]["id"] == first["member"]["id"]
    again = (await sign_in(gql, id_token("uid-ana", email="ana@example.com")))["data"]["signInWithFirebase"]
    assert again["member"]["id"] == first["member"]["id"]
    assert await count(database, "members") == 1


async def test_a_member_enrolled_at_the_till_is_linked_only_with_a_verified_email(gql, tokens, database):
    enrolled = await enroll(gql, tokens, "bo@example.com")
    unverified = await sign_in(gql, id_token("uid-bo", email="bo@example.com", verified=False))
    assert unverified["data"]["signInWithFirebase"]["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "email"}]
    verified = (await sign_in(gql, id_token("uid-bo", email="bo@example.com")))["data"]["signInWithFirebase"]
    assert verified["member"]["id"] == enrolled["id"]
    assert await count(database, "members") == 1


@pytest.mark.parametrize(
    "token",
    [
        id_token("uid-x", email="x@example.com", expires_in=-60),
        id_token("uid-x", email="x@example.com", project="someone-elses-project"),
        id_token("uid-x", email="x@example.com", issuer="https://evil.example.com/demo-loyalty"),
        "not-a-token",
        "",
    ],
    ids=["expired", "another project", "wrong issuer", "garbage", "empty"],
)
async def test_refused_id_tokens_are_unauthenticated_and_enrol_nobody(gql, database, token):
    result = await sign_in(gql, token)
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert await count(database, "members") == 0


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(gql):
    session = (await sign_in(gql, id_token("uid-cy", email="cy@example.com")))["data"]["signInWithFirebase"]
    first = session["refreshToken"]
    rotated = (await gql(REFRESH, {"r": first}))["data"]["refreshSession"]
    assert rotated["refreshToken"] != first and rotated["member"]["id"] == session["member"]["id"]
    # the old one was copied by someone: using it again revokes everything of this session
    assert error_codes(await gql(REFRESH, {"r": first})) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(REFRESH, {"r": rotated["refreshToken"]})) == ["UNAUTHENTICATED"]


async def test_sign_out_and_expiry_end_the_session(gql, settings):
    session = (await sign_in(gql, id_token("uid-di", email="di@example.com")))["data"]["signInWithFirebase"]
    await gql(SIGN_OUT, {"r": session["refreshToken"]})
    assert error_codes(await gql(REFRESH, {"r": session["refreshToken"]})) == ["UNAUTHENTICATED"]

    other = (await sign_in(gql, id_token("uid-di", email="di@example.com")))["data"]["signInWithFirebase"]
    clock.advance(timedelta(days=settings.refresh_token_ttl_days, seconds=1))
    assert error_codes(await gql(REFRESH, {"r": other["refreshToken"]})) == ["UNAUTHENTICATED"]
    # the access token expired long before
    assert error_codes(await gql("{ me { id } }", token=other["accessToken"])) == ["UNAUTHENTICATED"]


async def test_concurrent_first_sign_ins_enrol_one_member(gql, database):
    token = id_token("uid-race", email="race@example.com")
    results = await asyncio.gather(*(sign_in(gql, token) for _ in range(10)))
    ids = {r["data"]["signInWithFirebase"]["member"]["id"] for r in results}
    assert len(ids) == 1
    assert await count(database, "members") == 1
