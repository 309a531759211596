"""Identity through the API: a Firebase user whose name is real Unicode signs in with it;
one whose name we would refuse from the app still signs in, without the name."""

from __future__ import annotations

import pytest

from tests.conftest import SIGN_IN, enroll, id_token, member_uuid

PERSIAN = "\u0645\u0631\u06cc\u0645\u200c\u0631\u0636\u0627\u06cc\u06cc"  # Maryam Rezaei, with a ZWNJ
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")


@pytest.mark.parametrize(("name", "shown"), [(PERSIAN, PERSIAN), (FAMILY, FAMILY), ("Ana\u202egnp.exe", None)])
async def test_firebase_users_sign_in_whatever_their_name(gql, name, shown):
    result = await gql(SIGN_IN, {"t": id_token(f"uid-{len(name)}", email="m@example.com", name=name)})
    payload = result["data"]["signInWithFirebase"]
    assert payload["userErrors"] == [] and payload["accessToken"]
    assert payload["member"]["displayName"] == shown
    me = await gql("{ me { displayName } }", token=payload["accessToken"])
    assert me["data"]["me"]["displayName"] == shown


async def test_members_may_name_themselves_with_joiners_not_overrides(gql, tokens):
    ana = await enroll(gql, tokens, "ana@example.com")
    token = tokens.member(member_uuid(ana["id"]))
    update = (
        "mutation($n: String) { updateProfile(input: { displayName: $n }) "
        "{ member { displayName } userErrors { code field } } }"
    )
    ok = await gql(update, {"n": PERSIAN}, token=token)
    assert ok["data"]["updateProfile"] == {"member": {"displayName": PERSIAN}, "userErrors": []}
    refused = await gql(update, {"n": "Ana\u202e"}, token=token)
    assert refused["data"]["updateProfile"] == {
        "member": None,
        "userErrors": [{"code": "INVALID_INPUT", "field": "displayName"}],
    }
