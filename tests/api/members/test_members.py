"""Enrolment, profile, preferences and the member card, through the API."""

from __future__ import annotations

from datetime import timedelta

from domain import clock
from tests.conftest import OPS, count, counting_queries, enroll, enrolled, error_codes, purchase

ME = (
    "{ me { id memberNumber displayName email birthday preferences { pushMarketing locationNudges timezone locale } } }"
)
ENROLL = (
    "mutation($input: EnrollMemberInput!) { enrollMember(input: $input) "
    "{ member { id memberNumber email displayName birthday } userErrors { code field message } } }"
)


async def test_enrolled_member_sees_themselves(gql, tokens):
    member = await enroll(gql, tokens, "Ana@Example.com", displayName="Ana", birthday="1990-04-12")
    result = await gql(ME, token=tokens.member(_uuid(member)))
    me = result["data"]["me"]
    assert me["id"] == member["id"]
    assert me["email"] == "ana@example.com"  # stored lower-cased
    assert me["displayName"] == "Ana"
    assert me["birthday"] == "1990-04-12"
    # consent is opt-in
    assert me["preferences"] == {"pushMarketing": False, "locationNudges": False, "timezone": "UTC", "locale": "en"}


async def test_member_numbers_are_short_unique_and_unambiguous(gql, tokens):
    numbers = {(await enroll(gql, tokens, f"m{i}@example.com"))["memberNumber"] for i in range(30)}
    assert len(numbers) == 30
    for n in numbers:
        assert len(n) == 10
        assert not set(n) & set("ILOU")


async def test_enrolling_an_email_twice_is_already_exists(gql, tokens, database):
    await enroll(gql, tokens, "ana@example.com")
    result = await gql(ENROLL, {"input": {"email": "ANA@example.com "}}, token=tokens.staff())
    payload = result["data"]["enrollMember"]
    assert payload["member"] is None
    assert payload["userErrors"] == [
        {"code": "ALREADY_EXISTS", "field": "email", "message": "A member with this email is already enrolled."}
    ]
    assert await count(database, "members") == 1


async def test_invalid_profile_fields_are_invalid_input_and_write_nothing(gql, tokens, database):
    tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()
    cases = [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "x" * 300 + "@example.com"}, "email"),
        ({"email": "ok@example.com", "birthday": tomorrow}, "birthday"),
        ({"email": "ok@example.com", "birthday": "1850-01-01"}, "birthday"),
        ({"email": "ok@example.com", "displayName": "x" * 81}, "displayName"),
        ({"email": "ok@example.com", "displayName": "bad\u202ename"}, "displayName"),
        ({"email": "ok@example.com", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "ok@example.com", "locale": "not a locale"}, "locale"),
    ]
    for given, field in cases:
        result = await gql(ENROLL, {"input": given}, token=tokens.staff())
        payload = result["data"]["enrollMember"]
        assert payload["member"] is None, given
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_INPUT", field)], given
    assert await count(database, "members") == 0


async def test_wrong_types_are_refused_before_anything_runs(gql, tokens, database):
    result = await gql(ENROLL, {"input": {"email": 42, "birthday": "yesterday"}}, token=tokens.staff())
    assert result.get("data") is None
    messages = " ".join(e["message"] for e in result["errors"])
    assert "email" in messages and "birthday" in messages
    assert await count(database, "members") == 0


async def test_member_card_identifies_the_member_at_the_till(gql, tokens):
    member = await enroll(gql, tokens, "ana@example.com", displayName="Ana")
    card = await gql("{ memberCard { qrPayload expiresAt } }", token=tokens.member(_uuid(member)))
    card = card["data"]["memberCard"]
    lookup = "query($p: String!) { memberByCard(qrPayload: $p) { id memberNumber displayName } }"
    found = await gql(lookup, {"p": card["qrPayload"]}, token=tokens.staff())
    assert found["data"]["memberByCard"] == {
        "id": member["id"],
        "memberNumber": member["memberNumber"],
        "displayName": "Ana",
    }

    # a minute later the card no longer works
    clock.advance(timedelta(seconds=61))
    expired = await gql(lookup, {"p": card["qrPayload"]}, token=tokens.staff())
    assert expired["data"] == {"memberByCard": None}
    assert error_codes(expired) == ["EXPIRED"]


async def test_a_forged_card_is_refused(gql, tokens):
    member = await enroll(gql, tokens, "ana@example.com")
    card = await gql("{ memberCard { qrPayload } }", token=tokens.member(_uuid(member)))
    payload = card["data"]["memberCard"]["qrPayload"]
    prefix, _number, expiry, signature = payload.split(".")
    other = await enroll(gql, tokens, "bob@example.com")
    lookup = "query($p: String!) { memberByCard(qrPayload: $p) { id } }"
    for forged in (
        f"{prefix}.{other['memberNumber']}.{expiry}.{signature}",  # someone else's number
        f"{prefix}.{_number}.{int(expiry) + 3600}.{signature}",  # a later expiry
        "hello",
        "LC1.x.y.z",
    ):
        result = await gql(lookup, {"p": forged}, token=tokens.staff())
        assert error_codes(result) == ["INVALID_INPUT"], forged


async def test_preferences_change_consent_and_time_zone(gql, tokens):
    member = await enroll(gql, tokens, "ana@example.com")
    token = tokens.member(_uuid(member))
    update = (
        "mutation($push: Boolean!, $location: Boolean!, $timezone: String!) {"
        " updatePreferences(input: { pushMarketing: $push, locationNudges: $location, timezone: $timezone })"
        " { member { id preferences { pushMarketing locationNudges timezone } } userErrors { code field } } }"
    )
    ok = await gql(update, {"push": True, "location": True, "timezone": "Asia/Tokyo"}, token=token)
    assert ok["data"]["updatePreferences"]["member"]["preferences"] == {
        "pushMarketing": True,
        "locationNudges": True,
        "timezone": "Asia/Tokyo",
    }
    bad = await gql(update, {"push": False, "location": False, "timezone": "Nowhere/Land"}, token=token)
    assert bad["data"]["updatePreferences"]["userErrors"] == [{"code": "INVALID_INPUT", "field": "timezone"}]
    # nothing of the refused update was applied, consent included
    me = await gql(ME, token=token)
    assert me["data"]["me"]["preferences"]["pushMarketing"] is True
    assert me["data"]["me"]["preferences"]["timezone"] == "Asia/Tokyo"


async def test_birthday_is_set_once_by_the_member(gql, tokens):
    member = await enroll(gql, tokens, "ana@example.com")
    token = tokens.member(_uuid(member))
    update = (
        "mutation($b: Date) { updateProfile(input: { birthday: $b }) "
        "{ member { birthday } userErrors { code field } } }"
    )
    first = await gql(update, {"b": "1990-04-12"}, token=token)
    assert first["data"]["updateProfile"]["member"]["birthday"] == "1990-04-12"
    again = await gql(update, {"b": "1990-05-12"}, token=token)
    assert again["data"]["updateProfile"]["userErrors"] == [{"code": "NOT_ELIGIBLE", "field": "birthday"}]
    me = await gql(ME, token=token)
    assert me["data"]["me"]["birthday"] == "1990-04-12"


async def test_staff_pages_through_members_newest_first(gql, tokens):
    emails = [f"m{i:02d}@example.com" for i in range(7)]
    for e in emails:
        await enroll(gql, tokens, e)
    query = (
        "query($after: String) { members(first: 3, after: $after) { edges { cursor node { email } }"
        " pageInfo { hasNextPage endCursor } } }"
    )
    seen, after = [], None
    while True:
        page = (await gql(query, {"after": after}, token=tokens.staff()))["data"]["members"]
        seen += [e["node"]["email"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(emails))
    bad = await gql(query, {"after": "garbage"}, token=tokens.staff())
    assert error_codes(bad) == ["INVALID_INPUT"]


def _uuid(member: dict):
    from tests.conftest import member_uuid

    return member_uuid(member["id"])


async def test_a_page_of_members_with_their_wallets_costs_a_fixed_number_of_queries(gql, tokens):
    """N+1 guard: wallets and their expiring points load through one dataloader query."""

    for i in range(12):
        await enroll(gql, tokens, f"n{i:02d}@example.com")
    query = "{ members(first: 10) { edges { node { email wallets { balance expiringSoon { amount } } } } } }"
    with counting_queries() as queries:
        result = await gql(query, token=tokens.staff())
    page = result["data"]["members"]["edges"]
    assert len(page) == 10 and all(e["node"]["wallets"][0]["expiringSoon"] for e in page)
    assert len(queries) == 2, queries  # members, their wallets with their expiring lots


TIER = "tier { current { id name rank } next { id name rank } qualifyingPoints pointsToNextTier progress periodEndsAt }"


async def test_the_apps_me_reads_the_member_and_tier_in_one_statement_and_answers_as_a_staff_read(gql, tokens):
    """Me's member and tier come from one statement (its wallets from a second); the tier
    answers as the tier read on its own does, for a tier reached and for one held after
    the points that reached it were refunded (held until the period ends)."""
    ana = await enrolled(gql, tokens, "ana@example.com")
    staff_read = "query($id: ID!) { node(id: $id) { ... on Member { " + TIER + " } } }"
    await purchase(gql, tokens, ana, "T-1", "100.00")  # 1,000 qualifying points: Silver
    for step in ("reached", "held"):
        with counting_queries() as queries:
            mine = (await gql(OPS["Me"], token=ana.token))["data"]["me"]
        assert len(queries) == 2, queries  # member and tier; wallets with their expiring points
        theirs = (await gql(staff_read, {"id": ana.id}, token=tokens.staff()))["data"]["node"]["tier"]
        assert mine["tier"] == theirs
        assert mine["tier"]["current"]["name"] == "Silver"
        assert mine["tier"]["qualifyingPoints"] == (1000 if step == "reached" else 0)
        if step == "reached":
            refund = {"externalId": "T-1", "amount": "100.00"}
            assert (await gql(OPS["RefundPurchase"], refund, token=tokens.staff()))["data"]["refundPurchase"][
                "userErrors"
            ] == []
    # Without the tier, the member alone.
    with counting_queries() as queries:
        assert (await gql("{ me { id } }", token=ana.token))["data"]["me"]["id"] == ana.id
    assert len(queries) == 1, queries
