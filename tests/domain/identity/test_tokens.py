"""Our access tokens: every role round-trips, and they expire on our clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import clock
from domain.errors import InvalidCredentials
from domain.identity.tokens import Role, TokenIssuer


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
