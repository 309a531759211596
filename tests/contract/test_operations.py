"""The client contract: every document in contract/operations/ (the project's copy of
the contract's documents) must be accepted by our schema as written. Documents whose
features land in later issues are expected to fail until then (strict: once one
validates, move it to REQUIRED)."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from api.schema import build_schema
from tests.conftest import CONTRACT, DOCUMENTS, OPERATIONS_DIR, REQUIRED

# The contract's own folder, where a checkout sits beside it (a clone has none).
UPSTREAM_DIR = CONTRACT.parents[1] / "shared" / "contract" / "operations"

SCHEMA = build_schema()._schema


def test_the_contract_is_there():
    assert OPERATIONS_DIR.is_dir(), f"contract operations not found at {OPERATIONS_DIR}"
    assert REQUIRED <= set(DOCUMENTS), REQUIRED - set(DOCUMENTS)


@pytest.mark.parametrize(
    "name",
    [
        n if n in REQUIRED else pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="a later issue"))
        for n in sorted(DOCUMENTS)
    ],
)
def test_operation_validates_against_the_schema(name: str):
    path, text = DOCUMENTS[name]
    errors = validate(SCHEMA, parse(text))
    assert not errors, f"{path.name}: {name}: {[e.message for e in errors]}"


# --- The documents do what their comments say, sent exactly as written -------------


def _document(name: str) -> str:
    return DOCUMENTS[name][1]


async def test_pos_enrolls_and_looks_up_a_member_from_the_app_card(gql, tokens):
    enrolled = await gql(
        _document("EnrollMember"),
        {"email": "ana@example.com", "displayName": "Ana", "birthday": "1990-04-12"},
        token=tokens.staff(),
    )
    payload = enrolled["data"]["enrollMember"]
    assert payload["userErrors"] == []
    member = payload["member"]

    from tests.conftest import member_uuid

    ana = tokens.member(member_uuid(member["id"]))
    card = (await gql(_document("MemberCard"), token=ana))["data"]["memberCard"]
    assert card["qrPayload"] and card["expiresAt"]

    found = await gql(_document("LookupMember"), {"qrPayload": card["qrPayload"]}, token=tokens.staff())
    assert found["data"]["memberByCard"] == {
        "id": member["id"],
        "memberNumber": member["memberNumber"],
        "displayName": "Ana",
    }

    again = await gql(_document("EnrollMember"), {"email": "ana@example.com"}, token=tokens.staff())
    assert [e["code"] for e in again["data"]["enrollMember"]["userErrors"]] == ["ALREADY_EXISTS"]


async def test_the_app_reads_the_member_with_me(gql, tokens):
    enrolled = await gql(
        _document("EnrollMember"), {"email": "bo@example.com", "displayName": "Bo"}, token=tokens.staff()
    )
    member = enrolled["data"]["enrollMember"]["member"]
    from tests.conftest import member_uuid

    me = (await gql(_document("Me"), token=tokens.member(member_uuid(member["id"]))))["data"]["me"]
    assert me["id"] == member["id"]
    assert me["memberNumber"] == member["memberNumber"]
    assert (me["displayName"], me["email"], me["birthday"]) == ("Bo", "bo@example.com", None)
    # a new member starts in the entry tier of the demo program
    assert me["tier"]["current"]["name"] == "Bronze"
    assert me["tier"]["next"]["name"] == "Silver"
    assert me["tier"]["pointsToNextTier"] == 1000


async def test_update_preferences_as_written(gql, tokens):
    enrolled = await gql(_document("EnrollMember"), {"email": "cy@example.com"}, token=tokens.staff())
    member = enrolled["data"]["enrollMember"]["member"]
    from tests.conftest import member_uuid

    result = await gql(
        _document("UpdatePreferences"),
        {"push": True, "location": False, "timezone": "Asia/Tokyo"},
        token=tokens.member(member_uuid(member["id"])),
    )
    assert result["data"]["updatePreferences"] == {"member": {"id": member["id"]}, "userErrors": []}


def test_the_copy_holds_the_contract_unchanged():
    """Each document of a neighbouring contract is in our copy byte for byte."""
    upstream = sorted(UPSTREAM_DIR.glob("*.graphql")) if UPSTREAM_DIR.is_dir() else []
    if not upstream:
        pytest.skip(f"no contract beside the repository ({UPSTREAM_DIR})")
    for path in upstream:
        ours = OPERATIONS_DIR / path.name
        assert ours.is_file(), f"contract/operations/{path.name} is missing: copy it from {path}"
        assert ours.read_bytes() == path.read_bytes(), f"contract/operations/{path.name} differs from {path}"
