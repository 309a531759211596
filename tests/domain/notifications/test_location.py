"""Which store a location nudge is about (`location.choose`), from plain values: the
stores in reach with a message, nearest first, and the nudges queued lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.notifications import location
from domain.program.config import load
from domain.stores.service import Nearby, Place

RULES = load(None).notifications  # the demo program: 24 h cooldown per store, 1 nudge a day
NOW = datetime(2031, 3, 12, 12, 0, tzinfo=UTC)


def near(key: str, meters: float) -> Nearby:
    return Nearby(Place(key, key.title(), 48.86, 2.36, 150, f"Come to {key}"), meters)


MARAIS, BASTILLE = near("marais", 20.0), near("bastille", 90.0)


def test_the_nearest_store_not_cooling_down_within_the_days_cap():
    rules = RULES.model_copy(update={"location_max_per_day": 2})
    assert location.choose(rules, [MARAIS, BASTILLE], [], NOW) == MARAIS
    # the nearest had its nudge 23 h ago: still cooling down, the next one speaks
    assert location.choose(rules, [MARAIS, BASTILLE], [("marais", NOW - timedelta(hours=23))], NOW) == BASTILLE
    # 25 h ago: cooled down, and not counted in the last day either
    assert location.choose(rules, [MARAIS, BASTILLE], [("marais", NOW - timedelta(hours=25))], NOW) == MARAIS
    assert location.choose(rules, [MARAIS], [("marais", NOW - timedelta(hours=1))], NOW) is None
    assert location.choose(rules, [], [], NOW) is None


def test_the_days_cap_counts_every_store():
    assert RULES.location_max_per_day == 1
    elsewhere = [("opera", NOW - timedelta(hours=2))]
    assert location.choose(RULES, [MARAIS, BASTILLE], elsewhere, NOW) is None
    assert location.choose(RULES, [MARAIS], [("opera", NOW - timedelta(hours=24, seconds=1))], NOW) == MARAIS
