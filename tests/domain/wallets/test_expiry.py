"""Expiry in batches under a racing purchase, the inactivity policy (activity moves every
open lot's expiry) and a marketer's extension, against real PostgreSQL, the clock moved."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from domain import clock
from domain.audit import service as audit
from domain.errors import DomainError
from domain.program.config import parse
from domain.segments import service as segments
from domain.tiers import service as tiers
from domain.wallets import service as wallets
from tests.conftest import BASE, buy, new_member, state


def program(expiry: str, earning: str = "", welcome: int = 0):
    return parse(
        BASE.format(earning=earning, expiry=expiry, pending=0, welcome=welcome, cashback="enabled = false"), "t"
    )


MONTHLY = 'policy = "rolling"\nmonths = 1'
INACTIVITY = MONTHLY + "\nextend_on_activity = true"


async def open_lots(member_id) -> list[tuple[int, object]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT l.remaining, l.expires_at FROM lots l JOIN wallets w ON w.id = l.wallet_id"
        " WHERE w.member_id = $1 AND l.remaining > 0 ORDER BY l.id",
        [member_id],
    )
    return [(int(r["remaining"]), r["expires_at"]) for r in rows]


async def entries_of(member_id, kind: str) -> list[int]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT amount FROM ledger_entries WHERE member_id = $1 AND kind = $2 ORDER BY id", [member_id, kind]
    )
    return [int(r["amount"]) for r in rows]


def assert_whole(s: dict) -> None:
    assert s["balance"] == s["entries"] == s["lots"] >= 0 and s["negative_lots"] == 0, s


async def test_purchases_racing_expiry_batches_on_the_same_wallets_keep_the_ledger_whole():
    p = program(MONTHLY)
    ms = [await new_member(p) for _ in range(8)]
    for m in ms:
        await buy(p, m, f"old-{m}", "30")  # 30 points due in a month
    clock.advance(timedelta(days=40))

    async def visit(m):
        # a purchase, then a spend of everything the member sees, while the batches run
        await buy(p, m, f"new-{m}", "10")
        have = (await state(m))["balance"]
        try:
            await wallets.adjust(p, member_id=m, points=-have, reason="spend", idempotency_key=f"s-{m}", by="t")
        except DomainError as exc:  # the expiry took the due points between the read and the spend
            assert exc.code == "INSUFFICIENT_POINTS"

    # one wallet a batch, so batches and purchases interleave
    run, *_ = await asyncio.gather(tiers.run_expiry(p, batch=1), *[visit(m) for m in ms])
    expired_total = 0
    for m in ms:
        s = await state(m)
        assert_whole(s)
        expired = await entries_of(m, "EXPIRE")
        assert len(expired) <= 1  # never expired twice
        expired_total -= sum(expired)
        # every point is accounted for once: earned 40 = expired + spent + left
        spent = -sum(await entries_of(m, "ADJUST"))
        assert 40 == -sum(expired) + spent + s["balance"]
    assert run.expired == expired_total
    again = await tiers.run_expiry(p, batch=1)
    assert again.expired == 0  # nothing left to expire: the second run changes nothing
    for m in ms:
        assert len(await entries_of(m, "EXPIRE")) <= 1


async def test_a_purchase_waits_for_one_batch_not_for_the_whole_run():
    p = program(MONTHLY)
    ms = [await new_member(p) for _ in range(30)]
    for m in ms:
        await buy(p, m, f"old-{m}", "5")
    clock.advance(timedelta(days=40))
    run = await tiers.run_expiry(p, batch=10)
    assert run.expired == 150
    assert run.batches == 1 + 3 + 1  # pending (none), three of ten wallets, the last finds nothing
    for m in ms:
        assert_whole(await state(m))


async def test_a_batch_held_up_past_its_bound_is_cancelled_and_retried_smaller():
    """A purchase holds one wallet longer than a batch may keep its others locked: the
    server cancels the batch (its locks go), the run retries at half the size and still
    expires everything exactly once."""
    p = program(MONTHLY)
    ms = [await new_member(p) for _ in range(110)]
    for m in ms:
        await buy(p, m, f"old-{m}", "5")
    clock.advance(timedelta(days=40))
    first = (await connections.get("default").execute_query_dict("SELECT member_id FROM wallets ORDER BY id LIMIT 1"))[
        0
    ]["member_id"]
    held = asyncio.Event()

    async def long_purchase():
        async with in_transaction() as conn:
            await conn.execute_query("SELECT 1 FROM wallets WHERE member_id = $1 FOR UPDATE", [first])
            held.set()
            await asyncio.sleep(1.5)

    holder = asyncio.create_task(long_purchase())
    await held.wait()
    run = await tiers.run_expiry(p, lock_seconds=0.2)
    await holder
    assert run.cancelled == 3  # batches of 500, 250 and 125 wallets; the retry at the floor (100) waited
    assert run.expired == 5 * 110
    for m in ms:
        assert await entries_of(m, "EXPIRE") == [-5]
        assert_whole(await state(m))


async def test_under_an_inactivity_policy_a_purchase_moves_every_open_lot():
    p = program(INACTIVITY, welcome=50)
    m = await new_member(p)  # 50 welcome points, due in a month
    other = await new_member(p)
    clock.advance(timedelta(days=20))
    await buy(p, m, "A-1", "10")  # 10 more, due a month from now
    clock.advance(timedelta(days=20))  # the welcome points would have expired 10 days ago…
    await buy(p, m, "A-2", "5")
    due = clock.now().date() + timedelta(days=32)
    lots = await open_lots(m)
    assert [r for r, _ in lots] == [50, 10, 5]
    assert {e.date() for _, e in lots} == {due}  # …all of them now live a month after the last visit
    assert (await tiers.run_expiry(p)).expired == 50  # the other member's welcome points only
    assert (await state(m))["balance"] == 65
    assert (await state(other))["balance"] == 0
    assert_whole(await state(m))


async def test_an_activity_capped_to_nothing_still_moves_the_expiry():
    p = program(INACTIVITY, earning='rounding = "down"')
    m = await new_member(p)
    await buy(p, m, "C-1", "10")
    first = (await open_lots(m))[0][1]
    clock.advance(timedelta(days=3))
    await buy(p, m, "C-2", "0.40")  # rounds down to 0 points: a visit all the same
    assert await entries_of(m, "EARN") == [10]
    assert (await open_lots(m))[0][1] > first  # a month after the later visit


async def test_without_the_policy_each_credit_keeps_its_date():
    p = program(MONTHLY, welcome=50)
    m = await new_member(p)
    clock.advance(timedelta(days=20))
    await buy(p, m, "K-1", "10")
    lots = await open_lots(m)
    assert lots[0][1] < lots[1][1]


async def test_a_marketer_extends_a_segments_points_on_the_ledger_and_in_the_audit_log():
    p = program(MONTHLY, welcome=40)
    newcomer = await new_member(p)  # in `new`: joined now, no purchase
    regular = await new_member(p)
    for i in range(3):
        await buy(p, regular, f"R-{i}", "20")
    await segments.recompute(p)
    assert newcomer in await segments.members_of(["new"])
    assert regular not in await segments.members_of(["new"])
    until = clock.now() + timedelta(days=90)

    extended = await segments.extend_points_expiry(p, segment_key="new", member_ids=None, until=until, actor="mia")
    assert extended == [newcomer]
    assert {e for _, e in await open_lots(newcomer)} == {until}
    assert all(e < until for _, e in await open_lots(regular))
    assert await entries_of(newcomer, "EXTEND") == [0]  # the history says why; no sum moves
    assert_whole(await state(newcomer))
    (row,) = [r for r in await audit.entries(10) if r.action == "extendPointsExpiry"]
    details = json.loads(row.details) if isinstance(row.details, str) else row.details
    assert row.actor == "mia" and details["segmentKey"] == "new" and details["membersExtended"] == 1

    clock.advance(timedelta(days=40))  # past the old date: nothing of theirs expires
    assert (await tiers.run_expiry(p)).expired == 100  # the regular's 40 + 60 only
    assert (await state(newcomer))["balance"] == 40
    # the same extension again moves nothing and writes no entry
    assert await segments.extend_points_expiry(p, segment_key="new", member_ids=None, until=until, actor="mia") == []
    assert await entries_of(newcomer, "EXTEND") == [0]


async def lots_of(member_ids) -> dict[int, tuple]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT l.id, w.member_id, l.state, l.remaining, l.expires_at FROM lots l JOIN wallets w ON w.id = l.wallet_id"
        " WHERE w.member_id = ANY($1::uuid[])",
        [list(member_ids)],
    )
    return {r["id"]: (r["member_id"], r["state"], int(r["remaining"]), r["expires_at"]) for r in rows}


async def test_a_segments_extension_in_batches_moves_every_open_lot_once():
    p = parse(BASE.format(earning="", expiry=MONTHLY, pending=14, welcome=40, cashback="enabled = false"), "t")
    ms = [await new_member(p) for _ in range(7)]  # 40 spendable points each
    for i, m in enumerate(ms[:5]):
        for k in range(i % 3 + 1):
            await buy(p, m, f"S-{i}-{k}", "10")  # pending for 14 days, then spendable
    await wallets.adjust(p, member_id=ms[5], points=-40, reason="spent", idempotency_key="spent", by="t")  # no open lot
    until = clock.now() + timedelta(days=90)
    later = until + timedelta(days=30)
    await wallets.extend_expiry(p, [ms[0]], later, actor="mia", audience={"memberIds": 1}, strict=True)  # later already
    await wallets.extend_expiry(
        p, [ms[1]], until, actor="mia", audience={"memberIds": 1}, strict=True
    )  # a cut-short run
    clock.advance(timedelta(days=1))
    everyone = await segments.create(
        p, key="all", name="All", rules=[segments.Rule("CONSENT", consent="PUSH_MARKETING", value=False)], actor="mia"
    )
    assert everyone.member_count == 7
    before = await lots_of(ms)
    states = {m: await state(m) for m in ms}
    extends = {m: len(await entries_of(m, "EXTEND")) for m in ms}
    assert any(s == "PENDING" for _, s, _, _ in before.values())

    extended = await wallets.extend_expiry(
        p, await segments.members_of(["all"]), until, actor="mia", audience={"segmentKey": "all"}, strict=False, batch=2
    )

    # as one transaction would leave it: every open lot expiring before `until` now expires then, the rest as they were
    moved = {m for m, s, r, e in before.values() if s in ("AVAILABLE", "PENDING") and r > 0 and e < until}
    assert extended == sorted(moved) == sorted(set(ms) - {ms[0], ms[1], ms[5]})
    after = await lots_of(ms)
    assert after == {
        i: (m, s, r, until if m in moved and s in ("AVAILABLE", "PENDING") and r > 0 and e < until else e)
        for i, (m, s, r, e) in before.items()
    }
    for m in ms:  # one EXTEND entry per wallet that moved, and no sum moved
        assert len(await entries_of(m, "EXTEND")) == extends[m] + (m in moved)
        assert await state(m) == states[m]
        assert_whole(await state(m))
    (row,) = [r for r in await audit.entries(10) if r.action == "extendPointsExpiry" and r.subject_id == "all"]
    details = json.loads(row.details) if isinstance(row.details, str) else row.details
    assert details["membersExtended"] == len(moved)

    # run again (the marketer's retry, a run cut short): nothing moves twice
    assert await segments.extend_points_expiry(p, segment_key="all", member_ids=None, until=until, actor="mia") == []
    assert await lots_of(ms) == after
    assert {m: len(await entries_of(m, "EXTEND")) for m in ms} == {m: extends[m] + (m in moved) for m in ms}


@pytest.mark.parametrize(
    ("key", "ids", "days", "code", "field"),
    [
        (None, None, 30, "INVALID_INPUT", "segmentKey"),
        ("new", "one", 30, "INVALID_INPUT", "segmentKey"),
        ("nope", None, 30, "NOT_FOUND", "segmentKey"),
        (None, "stranger", 30, "NOT_FOUND", "memberIds"),
        (None, "one", -1, "INVALID_INPUT", "until"),
        (None, "one", 4000, "INVALID_INPUT", "until"),
    ],
)
async def test_a_bad_extension_is_refused_and_writes_nothing(key, ids, days, code, field):
    p = program(MONTHLY, welcome=40)
    m = await new_member(p)
    before = await open_lots(m)
    member_ids = {None: None, "one": [m], "stranger": [m, uuid.uuid4()]}[ids]
    with pytest.raises(DomainError) as caught:
        await segments.extend_points_expiry(
            p, segment_key=key, member_ids=member_ids, until=clock.now() + timedelta(days=days), actor="mia"
        )
    assert (caught.value.code, caught.value.field) == (code, field)
    assert await open_lots(m) == before
    assert await entries_of(m, "EXTEND") == []


@pytest.fixture(autouse=True)
def _real_time():
    clock.reset()
    yield
    clock.reset()
