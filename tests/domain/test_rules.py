"""Pure rules: the program file's validation, tier status, tokens, member cards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain import clock
from domain.errors import Expired, InvalidCredentials, InvalidInput
from domain.identity.tokens import Role, TokenIssuer
from domain.members import card
from domain.program.config import ProgramError, load, parse
from domain.tiers.service import status_of

GOOD = Path(__file__).resolve().parents[2] / "domain" / "program" / "demo.toml"


def test_the_demo_program_loads():
    p = load(None)
    assert p.currency == "EUR" and [t.key for t in p.tiers] == ["bronze", "silver", "gold"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('currency = "EUR"', 'currency = "EURO"'), "p.toml: program.currency: 'EURO' is not an ISO 4217 currency"),
        (("threshold = 1000", "threshold = 0"), "p.toml: tiers[1].threshold: must be greater than the previous"),
        (("months = 12", ""), "p.toml: expiry: months: required when policy is 'rolling'"),
        (("version = 1", "version = 7"), "p.toml: version: version 7 is not supported"),
        (("[cashback]", "[cashback]\nsurprise = 1"), "p.toml: cashback.surprise: Extra inputs are not permitted"),
        (("points_per_unit = 10", "points_per_unit = -1"), "p.toml: earning.points_per_unit: Input should be greater"),
        (('timezone = "Europe/Paris"', 'timezone = "Mars/Base"'), "p.toml: program.timezone: 'Mars/Base' is not"),
        (('name = "Silver"', 'name = "Silver"\nrank = 0'), "p.toml: not valid TOML"),
    ],
)
def test_program_errors_name_the_file_the_key_and_what_is_wrong(change, expected):
    old, new = change
    text = GOOD.read_text()
    assert old in text
    with pytest.raises(ProgramError) as error:
        parse(text.replace(old, new, 1), "p.toml")
    assert expected in str(error.value)


def test_a_missing_program_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProgramError, match="cannot read the program file"):
        load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("points", "current", "next_", "to_next", "progress"),
    [
        (0, "Bronze", "Silver", 1000, 0.0),
        (999, "Bronze", "Silver", 1, 0.999),
        (1000, "Silver", "Gold", 4000, 0.0),
        (4999, "Silver", "Gold", 1, 0.9998),
        (5000, "Gold", None, None, 1.0),
        (99999, "Gold", None, None, 1.0),
    ],
)
def test_tier_status(points, current, next_, to_next, progress):
    s = status_of(load(None), points, datetime(2030, 6, 1, tzinfo=UTC))
    assert (s.current.name, s.next.name if s.next else None, s.points_to_next_tier, s.progress) == (
        current,
        next_,
        to_next,
        progress,
    )
    assert s.period_ends_at is None  # rolling window


def test_a_calendar_year_window_ends_on_new_year():
    p = parse(GOOD.read_text().replace('window = "rolling_12_months"', 'window = "calendar_year"'), "p")
    assert status_of(p, 0, datetime(2030, 6, 1, tzinfo=UTC)).period_ends_at == datetime(2031, 1, 1, tzinfo=UTC)


def test_tokens_round_trip_and_expire_on_our_clock():
    issuer = TokenIssuer(b"k" * 40)
    for role in Role:
        subject = "7f0e1b7e-64a5-4bb8-9c44-0a1a3a5f1f11" if role is Role.MEMBER else "till"
        principal = issuer.verify(issuer.mint(role, subject)[0])
        assert (principal.role, principal.subject) == (role, subject)
    token, _ = issuer.mint(Role.STAFF, "till", ttl=timedelta(minutes=5))
    clock.advance(timedelta(minutes=6))
    with pytest.raises(InvalidCredentials, match="expired"):
        issuer.verify(token)
    clock.reset()
    with pytest.raises(InvalidCredentials):
        TokenIssuer(b"other" * 10).verify(token)


def test_member_cards_last_a_minute_and_cannot_be_forged():
    key = b"k" * 40
    payload, expires_at = card.issue(key, "ABCDE12345")
    assert card.read(key, payload) == "ABCDE12345"
    assert 59 <= (expires_at - clock.now()).total_seconds() <= 60
    clock.advance(timedelta(seconds=58))
    assert card.read(key, payload) == "ABCDE12345"
    clock.advance(timedelta(seconds=3))
    with pytest.raises(Expired):
        card.read(key, payload)
    clock.reset()
    fresh, _ = card.issue(key, "ABCDE12345")
    prefix, number, expiry, signature = fresh.split(".")
    for forged in (
        f"{prefix}.ZZZZZ99999.{expiry}.{signature}",
        f"{prefix}.{number}.{int(expiry) + 60}.{signature}",
        f"{prefix}.{number}.{expiry}.AAAA",
        "x" * 500,
        "",
    ):
        with pytest.raises(InvalidInput):
            card.read(key, forged)
    with pytest.raises(InvalidInput):
        card.read(b"another" * 6, fresh)
