"""Draws through the domain use cases against real PostgreSQL: the cap and the balance
under 50 racing entries, a cancel that refunds each entry once however often it runs, and
a draw that names the winners its recorded seed names."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from tortoise import connections

from domain import clock
from domain.draws import service as draws
from domain.errors import DomainError
from domain.program.config import parse
from tests.conftest import BASE, new_member, state

WELCOME = 100


def program():
    return parse(
        BASE.format(
            earning="", expiry='policy = "rolling"\nmonths = 12', pending=0, welcome=WELCOME, cashback="enabled = false"
        ),
        "test.toml",
    )


async def open_draw(**kw):
    values = dict(prize="Espresso machine", winners=2, entry_cost=10, max_entries_per_member=5, by="mia")
    values.update(kw)
    return await draws.create(closes_at=clock.now() + timedelta(days=7), **values)


async def attempt(member_id, draw_id, key: str) -> str:
    try:
        await draws.enter(member_id=member_id, draw_id=draw_id, idempotency_key=key)
    except DomainError as exc:
        return exc.code
    return "OK"


async def sql(query: str, *params) -> list[dict]:
    return await connections.get("default").execute_query_dict(query, list(params))


def assert_consistent(s: dict) -> None:
    assert s["balance"] == s["entries"] == s["lots"] and s["balance"] >= 0 and s["negative_lots"] == 0, s


async def test_fifty_racing_entries_by_one_member_stop_at_the_cap():
    p = program()
    m = await new_member(p)
    draw = await open_draw(max_entries_per_member=5)
    outcomes = await asyncio.gather(*(attempt(m, draw.id, f"k-{i}") for i in range(50)))
    assert sorted(set(outcomes)) == ["NOT_ELIGIBLE", "OK"]
    assert outcomes.count("OK") == 5
    s = await state(m)
    assert s["balance"] == WELCOME - 5 * 10
    assert_consistent(s)
    assert (await sql("SELECT COUNT(*) AS n FROM draw_entries WHERE member_id = $1", m))[0]["n"] == 5


async def test_fifty_racing_entries_never_overdraw_the_wallet():
    p = program()
    m = await new_member(p)
    draw = await open_draw(entry_cost=30, max_entries_per_member=50)  # 100 points buy 3
    outcomes = await asyncio.gather(*(attempt(m, draw.id, f"k-{i}") for i in range(50)))
    assert outcomes.count("OK") == 3
    assert set(outcomes) == {"OK", "INSUFFICIENT_POINTS"}
    s = await state(m)
    assert s["balance"] == WELCOME - 90
    assert_consistent(s)


async def test_the_same_key_sent_fifty_times_at_once_is_one_entry():
    p = program()
    m = await new_member(p)
    draw = await open_draw()
    outcomes = await asyncio.gather(*(attempt(m, draw.id, "same") for _ in range(50)))
    assert set(outcomes) == {"OK"}
    assert (await state(m))["balance"] == WELCOME - 10
    other = await open_draw()
    assert await attempt(m, other.id, "same") == "IDEMPOTENCY_CONFLICT"


async def test_entries_stop_at_the_closing_time():
    p = program()
    m = await new_member(p)
    draw = await open_draw()
    clock.advance(timedelta(days=7))  # closes_at itself is too late
    assert await attempt(m, draw.id, "late") == "EXPIRED"
    assert (await state(m))["balance"] == WELCOME


async def test_a_draw_cancelled_twice_at_once_refunds_every_entry_exactly_once():
    p = program()
    members = [await new_member(p) for _ in range(3)]
    draw = await open_draw(max_entries_per_member=3)
    for i, m in enumerate(members):
        for k in range(i + 1):  # 1, 2 and 3 entries
            assert await attempt(m, draw.id, f"e-{k}") == "OK"
    assert [(await state(m))["balance"] for m in members] == [90, 80, 70]

    cancelled = await asyncio.gather(draws.cancel(p, draw.id), draws.cancel(p, draw.id))
    assert [d.state for d in cancelled] == ["CANCELLED", "CANCELLED"]
    await draws.cancel(p, draw.id)  # and a third time, later
    for m in members:
        s = await state(m)
        assert s["balance"] == WELCOME
        assert_consistent(s)
    refunds = await sql(
        "SELECT COUNT(*) AS n, SUM(amount) AS points FROM ledger_entries WHERE dedupe_key LIKE 'draw-refund:%'"
    )
    assert (refunds[0]["n"], refunds[0]["points"]) == (6, 60)
    assert (await sql("SELECT COUNT(*) AS n FROM draw_entries WHERE refunded_by_id IS NULL"))[0]["n"] == 0
    assert await attempt(members[0], draw.id, "after") == "EXPIRED"
    assert await draws.draw_due(p) == 0  # a cancelled draw is never drawn, even once past its closing time
    clock.advance(timedelta(days=8))
    assert await draws.draw_due(p) == 0


async def test_the_winners_are_those_the_recorded_seed_names():
    p = program()
    members = [await new_member(p) for _ in range(4)]
    draw = await open_draw(winners=3, max_entries_per_member=2)
    for m in members:
        for k in range(2):
            assert await attempt(m, draw.id, f"e-{k}") == "OK"
    clock.advance(timedelta(days=7))
    # A run that stopped after recording the seed: the next run draws from that seed, not a new one.
    await sql("UPDATE draws SET state = 'CLOSED', seed = 'recorded-seed' WHERE id = $1", draw.id)
    assert await draws.draw_due(p) == 1
    assert await draws.draw_due(p) == 0  # drawn once

    numbers = [r["id"] for r in await sql("SELECT id FROM draw_entries WHERE draw_id = $1", draw.id)]
    expected = random.Random("recorded-seed").sample(sorted(numbers), 3)  # README, Draws: the algorithm
    assert draws.pick_winners("recorded-seed", numbers, 3) == expected
    won = await sql("SELECT id, member_id, coupon_id FROM draw_entries WHERE won ORDER BY id")
    assert [w["id"] for w in won] == sorted(expected)
    coupons = await sql("SELECT member_id FROM coupons WHERE id = ANY($1::uuid[])", [w["coupon_id"] for w in won])
    assert sorted(c["member_id"] for c in coupons) == sorted(w["member_id"] for w in won)
    pushes = await sql("SELECT member_id, dedupe_key FROM notifications ORDER BY dedupe_key")
    assert sorted((r["member_id"], r["dedupe_key"]) for r in pushes) == sorted(
        (w["member_id"], f"draw-won:{w['id']}") for w in won
    )
    row = await draws.find(draw.id, None)
    assert (row.state, row.seed) == ("DRAWN", "recorded-seed")


def test_pick_winners_is_the_documented_algorithm():
    entries = [17, 3, 42, 8, 23]
    assert draws.pick_winners("abc", entries, 2) == random.Random("abc").sample([3, 8, 17, 23, 42], 2)
    assert draws.pick_winners("abc", list(reversed(entries)), 2) == draws.pick_winners("abc", entries, 2)
    assert sorted(draws.pick_winners("abc", entries, 10)) == sorted(entries)  # fewer entries than prizes
    assert draws.pick_winners("abc", [], 3) == []
