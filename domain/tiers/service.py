"""Tier status: where a member stands and what the next tier takes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from domain.program.config import Program, Tier, TierWindow


@dataclass(frozen=True)
class TierStatus:
    current: Tier
    next: Tier | None
    qualifying_points: int
    points_to_next_tier: int | None
    progress: float  # 0..1 towards `next`; 1.0 at the top tier
    period_ends_at: datetime | None


def tier_for(program: Program, qualifying_points: int) -> Tier:
    """The highest tier whose threshold the points reach."""
    reached = [t for t in program.tiers if t.threshold <= qualifying_points]
    return reached[-1]


def period_end(program: Program, now: datetime) -> datetime | None:
    """When the qualifying window closes; a rolling window never closes as a whole."""
    if program.tier_rules.window is TierWindow.CALENDAR_YEAR:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return None


def status_of(program: Program, qualifying_points: int, now: datetime) -> TierStatus:
    current = tier_for(program, qualifying_points)
    higher = [t for t in program.tiers if t.rank > current.rank]
    nxt = higher[0] if higher else None
    if nxt is None:
        return TierStatus(current, None, qualifying_points, None, 1.0, period_end(program, now))
    span = nxt.threshold - current.threshold
    progress = min(1.0, max(0.0, (qualifying_points - current.threshold) / span))
    return TierStatus(
        current=current,
        next=nxt,
        qualifying_points=qualifying_points,
        points_to_next_tier=nxt.threshold - qualifying_points,
        progress=round(progress, 4),
        period_ends_at=period_end(program, now),
    )
