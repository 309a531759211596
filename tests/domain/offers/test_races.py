"""Offers under real concurrency: a usage limit holds however many members race to clip,
and one clip is used by one purchase however many purchases race."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from tortoise import connections

from domain import clock
from domain.errors import DomainError
from domain.offers import service as offers
from domain.program.config import load
from tests.conftest import buy, new_member, state

P = load(None)


async def make(member_ids, **extra):
    values = {
        "title": "Bonus",
        "description": "",
        "kind": "BONUS_POINTS",
        "value": Decimal(100),
        "segment_keys": [],
        "tier_keys": [],
        "member_ids": member_ids,
        "store_keys": [],
        "valid_from": None,
        "valid_until": clock.now() + timedelta(days=3),
        "usage_limit": None,
        "actor": "mia",
        **extra,
    }
    return await offers.create(P, **values)


async def test_twenty_members_race_for_five_clips():
    people = [await new_member(P) for _ in range(20)]
    offer = await make(people, usage_limit=5)
    results = await asyncio.gather(*(offers.activate(P, m, offer.id) for m in people), return_exceptions=True)
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 5 and len(lost) == 15
    assert {e.code for e in lost} == {"OUT_OF_STOCK"}
    assert (await offers.find(offer.id)).activations == 5


async def test_one_clip_one_purchase_however_many_race():
    ana = await new_member(P)
    offer = await make([ana])
    await asyncio.gather(*(offers.activate(P, ana, offer.id) for _ in range(5)))  # one clip
    await asyncio.gather(*(buy(P, ana, f"r{n}", "1.00") for n in range(10)))
    rows = await connections.get("default").execute_query_dict(
        "SELECT points_earned FROM purchases WHERE member_id = $1", [ana]
    )
    assert sorted(r["points_earned"] for r in rows) == [10] * 9 + [110]
    s = await state(ana)
    assert s["balance"] == s["entries"] == s["lots"] == 100 + 9 * 10 + 110  # welcome + purchases
