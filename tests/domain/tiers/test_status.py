"""A member's tier status from their qualifying points, over a rolling or a calendar window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import domain.program
from domain.program.config import load, parse
from domain.tiers.service import status_of

GOOD = Path(domain.program.__file__).parent / "demo.toml"


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
