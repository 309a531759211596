"""Who members are: names as Unicode writes them, emails without invisible characters,
time zones of real places, plain decimal amounts, and access tokens that cannot claim to
come from the future or to live for centuries."""

from __future__ import annotations

import time
import unicodedata
from datetime import timedelta
from decimal import Decimal

import jwt
import pytest
from graphql import GraphQLError

from api.scalars import parse_decimal
from domain import clock
from domain.errors import InvalidCredentials, InvalidInput
from domain.identity.tokens import AUDIENCE, ISSUER, MAX_LIFETIME, Role, TokenIssuer
from domain.members import service as members
from tests.conftest import TEST_SECRET

REAL_NAMES = {
    # Maryam Rezaei in Persian, a zero width non-joiner between the two names
    "Persian with a zero width non-joiner": "\u0645\u0631\u06cc\u0645\u200c\u0631\u0636\u0627\u06cc\u06cc",
    "an emoji family (zero width joiners)": "👨\u200d👩\u200d👧",
    "a heart with its variation selector": "Ana \u2764\ufe0f",
    "a subdivision flag (tag characters)": "Iain \U0001f3f4"
    + "\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "Devanagari with a joiner after the virama": "क्\u200dष",
    "combining accents, normalised": "Zoe\u0308",
    "plain": "Ana Lima",
}


@pytest.mark.parametrize("name", list(REAL_NAMES.values()), ids=list(REAL_NAMES))
def test_real_names_are_accepted(name):
    assert members.valid_display_name(name) == unicodedata.normalize("NFC", name)


FAKE_NAMES = {
    "right-to-left override": "Ana\u202egnp.exe",
    "left-to-right embedding": "\u202aAna",
    "right-to-left isolate": "Ana\u2067x\u2069",
    "right-to-left mark": "Ana\u200f",
    "zero width space": "A\u200bna",
    "a word joiner": "A\u2060na",
    "a byte order mark": "\ufeffAna",
    "a soft hyphen": "A\u00adna",
    "a Hangul filler (an invisible letter)": "\u3164",
    "a leading joiner": "\u200dAna",
    "a trailing non-joiner": "Ana\u200c",
    "two joiners in a row": "A\u200d\u200dna",
    "a joiner beside a space": "Ana \u200dLima",
    "a private-use character": "Ana\ue000",
    "a NUL": "Ana\x00",
    "an escape sequence": "Ana\x1b[31m",
    "a C1 control": "Ana\x85",
    "a lone surrogate": "Ana\ud800",
}


@pytest.mark.parametrize("name", list(FAKE_NAMES.values()), ids=list(FAKE_NAMES))
def test_controls_and_invisible_characters_in_names_are_refused(name):
    with pytest.raises(InvalidInput) as refused:
        members.valid_display_name(name)
    assert refused.value.field == "displayName"


@pytest.mark.parametrize(
    "email",
    [
        "ana\u200b@example.com",
        "ana\u200d@example.com",
        "\u202eana@example.com",
        "ana\u2066@example.com",
        "an\u00ada@example.com",
        "ana\ufeff@example.com",
        "ana\u3164@example.com",
        "ana\u00a0x@example.com",
        "ana\x85@example.com",
    ],
    ids=["ZWSP", "ZWJ", "RLO", "LRI", "soft hyphen", "BOM", "Hangul filler", "no-break space", "C1 control"],
)
def test_invisible_and_bidi_characters_in_emails_are_refused(email):
    with pytest.raises(InvalidInput) as refused:
        members.valid_email(email)
    assert refused.value.field == "email"


def test_emails_are_compared_in_one_normal_form():
    assert members.valid_email(" Ana@Example.com ") == "ana@example.com"
    assert members.valid_email("zoe\u0308@example.com") == members.valid_email("zo\u00eb@example.com")
    assert members.valid_email("ñandú@example.com") == "ñandú@example.com"


async def test_an_invisible_twin_of_an_email_cannot_enrol(app, gql, tokens):
    from tests.conftest import enroll

    await enroll(gql, tokens, "ana@example.com")
    twin = await gql(
        "mutation($e: String!) { enrollMember(input: { email: $e }) { member { id } userErrors { code field } } }",
        {"e": "ana\u200b@example.com"},
        token=tokens.staff(),
    )
    assert twin["data"]["enrollMember"] == {"member": None, "userErrors": [{"code": "INVALID_INPUT", "field": "email"}]}


@pytest.mark.parametrize(
    "zone",
    ["localtime", "Factory", "posixrules", "EST5EDT", "CST6CDT", "EST", "Etc/GMT+5", "US/Eastern", "GB", "Zulu", ""],
)
def test_time_zones_that_are_no_place_are_refused(zone):
    with pytest.raises(InvalidInput) as refused:
        members.valid_timezone(zone)
    assert refused.value.field == "timezone"


@pytest.mark.parametrize(
    "zone", ["UTC", "Etc/UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Pacific/Kiritimati", "Asia/Calcutta"]
)
def test_time_zones_of_real_places_are_accepted(zone):
    assert members.valid_timezone(zone) == zone


@pytest.mark.parametrize(
    "given",
    [
        *("10_000", "\uff11\uff10", " 10", "10 ", "NaN", "Infinity", "1e3", "+10", ".5", "5.", "1,5", "0x10", ""),
        *(True, 1e20, None, [], "9" * 65),
    ],
)
def test_amounts_are_plain_decimals_only(given):
    with pytest.raises(GraphQLError):
        parse_decimal(given)


@pytest.mark.parametrize(
    ("given", "read"), [("10", "10"), ("12.50", "12.50"), ("-3.5", "-3.5"), (12, "12"), (12.5, "12.5")]
)
def test_plain_decimals_are_read_as_written(given, read):
    assert parse_decimal(given) == Decimal(read) and str(parse_decimal(given)) == read


def _signed(**claims) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "till-1", "role": "staff", "iat": now, "exp": now + 600}
    return jwt.encode({**base, **claims}, TEST_SECRET, algorithm="HS256")


ISSUER_OF_TESTS = TokenIssuer(TEST_SECRET.encode())
YEAR = 365 * 86400

# Each builds the claims from the time of the test (the table is built at collection).
BAD_TIMES = {
    "issued ten years ahead": lambda now: {"iat": now + 10 * YEAR, "exp": now + 10 * YEAR + 600},
    "issued two minutes ahead": lambda now: {"iat": now + 120},
    "iat a string": lambda now: {"iat": "garbage"},
    "iat null": lambda now: {"iat": None},
    "iat a boolean": lambda now: {"iat": True},
    "exp a string": lambda now: {"exp": "tomorrow"},
    "lives three centuries": lambda now: {"iat": now, "exp": now + 300 * YEAR},
    "issued two years ago, still valid": lambda now: {"iat": now - 2 * YEAR, "exp": now + 600},
    "exp 10^20": lambda now: {"exp": 10**20},
    "exp 1e308": lambda now: {"exp": 1e308},
    "iat -10^20": lambda now: {"iat": -(10**20)},
}


@pytest.mark.parametrize("case", list(BAD_TIMES))
def test_tokens_from_the_future_or_for_centuries_are_refused(case):
    with pytest.raises(InvalidCredentials):
        ISSUER_OF_TESTS.verify(_signed(**BAD_TIMES[case](int(time.time()))))


def test_tokens_within_the_rules_are_accepted():
    now = int(time.time())
    # a clock a little behind the issuer's, and the longest lifetime `loyalty token` mints
    assert ISSUER_OF_TESTS.verify(_signed(iat=now + 30)).role is Role.STAFF
    longest = int(MAX_LIFETIME.total_seconds())
    assert ISSUER_OF_TESTS.verify(_signed(iat=now, exp=now + longest)).role is Role.STAFF
    token, expires_at = ISSUER_OF_TESTS.mint(Role.MEMBER, "7d7a2c3e-0f4b-4c9a-9a8e-2f6f1b0c9d11")
    assert ISSUER_OF_TESTS.verify(token).expires_at == expires_at.replace(microsecond=0)


def test_the_iat_rule_follows_the_service_clock():
    token, _ = ISSUER_OF_TESTS.mint(Role.STAFF, "till-1")
    clock.advance(timedelta(minutes=-5))  # a token minted "after" now
    try:
        with pytest.raises(InvalidCredentials):
            ISSUER_OF_TESTS.verify(token)
    finally:
        clock.reset()
