"""Earning rules: how many points (and how much cashback) a purchase earns, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from domain.program.config import Program, Rounding

_ROUNDING = {Rounding.DOWN: ROUND_DOWN, Rounding.NEAREST: ROUND_HALF_UP, Rounding.UP: ROUND_UP}


@dataclass(frozen=True)
class Earned:
    points: int
    cashback: int  # minor units of the program currency
    explanation: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        promotion = self.explanation.get("promotion")
        return f"Purchase: {self.points} points" + (f" ({promotion})" if promotion else "")


def for_purchase(program: Program, amount: Decimal, tier_key: str, at: datetime, earned_today: int) -> Earned:
    """Points = amount x rate x tier multiplier x best promotion multiplier, rounded once
    as the program says, then capped per purchase and per day (`earned_today` is what
    the member already earned today, in the program's time zone)."""
    rules = program.earning
    tier = program.tier(tier_key) or program.entry_tier
    day = at.astimezone(program.zone).date()
    promotions = [p for p in rules.promotions if p.applies_on(day)]
    best = max(promotions, key=lambda p: p.multiplier, default=None)
    promotion_multiplier = best.multiplier if best else Decimal(1)

    raw = amount * rules.points_per_unit * tier.multiplier * promotion_multiplier
    points = int(raw.quantize(Decimal(1), rounding=_ROUNDING[rules.rounding]))
    uncapped = points
    if rules.max_points_per_purchase is not None:
        points = min(points, rules.max_points_per_purchase)
    if rules.max_points_per_day is not None:
        points = max(0, min(points, rules.max_points_per_day - earned_today))

    cashback = 0
    if program.cashback.enabled:
        minor = Decimal(10) ** program.currency_decimals
        cashback = int((amount * program.cashback.percent / 100 * minor).quantize(Decimal(1), rounding=ROUND_DOWN))

    explanation = {
        "rule": "purchase",
        "rate": str(rules.points_per_unit),
        "rounding": rules.rounding.value,
        "tier": tier.key,
        "tierMultiplier": str(tier.multiplier),
        "multiplier": str(tier.multiplier * promotion_multiplier),
    }
    if best:
        explanation["promotion"] = best.name
        explanation["promotionMultiplier"] = str(best.multiplier)
    if points != uncapped:
        explanation["capped"] = {"from": uncapped, "to": points}
    if cashback:
        explanation["cashbackPercent"] = str(program.cashback.percent)
    return Earned(points=points, cashback=cashback, explanation=explanation)
