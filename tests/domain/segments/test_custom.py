"""Custom segments: each kind of rule selects whom it says, and bad rules are refused
with an INVALID_INPUT naming the rule."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from tortoise import connections

from domain import clock
from domain.members import service as members
from domain.notifications import service as notifications
from domain.program.config import load
from domain.segments import service as segments
from domain.segments.errors import InvalidRule
from tests.conftest import buy, new_member

P = load(None)
R = segments.Rule


async def members_of(key: str) -> set:
    rows = await connections.get("default").execute_query_dict(
        "SELECT sm.member_id FROM segment_members sm JOIN segments s ON s.id = sm.segment_id WHERE s.key = $1", [key]
    )
    return {r["member_id"] for r in rows}


async def test_each_rule_kind_selects_its_members():
    ana, bob, cy = [await new_member(P) for _ in range(3)]
    await members.update_profile(ana, members.Profile(birthday=date(1990, 3, 14)))
    await members.update_preferences(bob, push_marketing=True, location_nudges=False)
    await notifications.register_device(cy, fcm_token="t" * 40, platform="IOS")
    await buy(P, ana, "a1", "30.00", store_key="paris-1")
    await buy(P, ana, "a2", "30.00", store_key="lyon-2")
    await buy(P, bob, "b1", "10.00", store_key="paris-1")
    clock.advance(timedelta(days=10))
    await buy(P, cy, "c1", "5.00")
    cases = {
        "march": [R("BIRTHDAY_MONTH", months=(3,))],
        "push_ok": [R("CONSENT", consent="PUSH_MARKETING")],
        "app_users": [R("HAS_DEVICE")],
        "no_app": [R("HAS_DEVICE", value=False)],
        "big": [R("SPEND", min=Decimal("50"), window_days=30)],
        "two_visits": [R("PURCHASE_COUNT", min=Decimal(2))],
        "paris": [R("STORES_VISITED", store_ids=("paris-1",))],
        "two_stores": [R("STORES_VISITED", min=Decimal(2))],
        "quiet_week": [R("DAYS_SINCE_LAST_PURCHASE", min=Decimal(7))],
        "this_week": [R("DAYS_SINCE_LAST_PURCHASE", max=Decimal(6))],
        "bronze_small": [R("TIER", tiers=("bronze",)), R("SPEND", max=Decimal("20"))],
    }
    for key, rules in cases.items():
        await segments.create(P, key=key, name=key, rules=rules, actor="mia")
    assert await members_of("march") == {ana}
    assert await members_of("push_ok") == {bob}
    assert await members_of("app_users") == {cy}
    assert await members_of("no_app") == {ana, bob}
    assert await members_of("big") == {ana}
    assert await members_of("two_visits") == {ana}
    assert await members_of("paris") == {ana, bob}
    assert await members_of("two_stores") == {ana}
    assert await members_of("quiet_week") == {ana, bob}  # 10 days ago
    assert await members_of("this_week") == {cy}
    assert await members_of("bronze_small") == {bob, cy}


@pytest.mark.parametrize(
    ("rules", "field", "words"),
    [
        ([R("TIER", tiers=("platinum",))], "rules[0].tiers", "no tier 'platinum'"),
        ([R("CONSENT")], "rules[0].consent", "consent is one of"),
        ([R("HAS_DEVICE"), R("SPEND", min=Decimal(10), window_days=0)], "rules[1].windowDays", "between 1 and"),
        ([R("SPEND")], "rules[0].min", "give min, max or both"),
        ([R("SPEND", min=Decimal("1.234"))], "rules[0].min", "at most 2 decimals"),
        ([R("PURCHASE_COUNT", min=Decimal(5), max=Decimal(2))], "rules[0].max", "max must be at least min"),
        ([R("BIRTHDAY_MONTH", months=(13,))], "rules[0].months", "between 1 and 12"),
        ([R("TIER", tiers=("gold",), months=(3,))], "rules[0].months", "does not apply to TIER"),
        ([R("DAYS_SINCE_LAST_PURCHASE", min=Decimal("1.5"))], "rules[0].min", "whole number"),
        ([R("STORES_VISITED")], "rules[0].storeIds", "give storeIds"),
    ],
)
async def test_a_bad_rule_is_named(rules, field, words):
    with pytest.raises(InvalidRule) as caught:
        await segments.create(P, key="bad", name="Bad", rules=rules, actor="mia")
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.field == field
    index = field.split("]")[0] + "]"
    assert caught.value.message.startswith(f"{index} ({rules[int(index[6:-1])].kind}): ")
    assert words in caught.value.message
    assert [s.key for s in await segments.all_segments()] == ["new", "occasional", "high_value", "at_risk"]
