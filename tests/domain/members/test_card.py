"""Member cards: they last a minute and cannot be forged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import clock
from domain.errors import Expired, InvalidInput
from domain.members import card


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
