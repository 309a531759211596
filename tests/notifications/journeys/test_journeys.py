"""Journeys from the demo program file, through the worker's steps (the `journeys` job,
then the push dispatcher), the real firebase-admin client and the fake FCM, with the
clock moved: each fires once for its trigger, and not again when the trigger repeats
within its rule. Each test runs the program with only the journey it is about, so the
pushes it counts are that journey's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.journeys import service as journeys
from domain.segments import service as segments
from notifications.dispatch import dispatch_due
from notifications.journeys import run_due
from tests.conftest import buy, state
from tests.notifications.conftest import PROGRAM, at, member

DAY = timedelta(days=1)
START = datetime(2030, 1, 10, 10, tzinfo=UTC)


def only(key: str):
    journey = PROGRAM.journey(key)
    assert journey is not None, key
    return PROGRAM.model_copy(update={"journeys": [journey]})


async def worker(program, sender) -> journeys.Ran:
    """One pass of the `journeys` job, then the dispatcher."""
    ran = await run_due(program)
    await dispatch_due(program, sender)
    return ran


def titles(fcm, token: str) -> list[str]:
    return [m["notification"]["title"] for m in fcm.delivered if m["token"] == token]


async def points(member_id) -> int:
    return int((await state(member_id))["balance"])


async def test_welcome_fires_an_hour_after_enrolment_once_whoever_runs_it(fcm, sender):
    program = only("welcome")
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    at(START + timedelta(minutes=30))
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == []  # the delay is an hour
    at(START + timedelta(hours=1, minutes=1))
    # two workers at once, then more passes later: one welcome
    await asyncio.gather(run_due(program), run_due(program))
    for hours in (0, 2, 30):
        at(START + timedelta(hours=1 + hours, minutes=1))
        await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["Welcome to Café Aurora"]
    runs = await journeys.runs_of(ana)
    assert [(r.journey_key, r.occurrence, r.state) for r in runs] == [("welcome", "joined", "DONE")]
    assert fcm.delivered[0]["data"]["journey"] == "welcome" and fcm.delivered[0]["data"]["kind"] == "JOURNEY"


async def test_welcome_respects_consent_through_the_push_policy(fcm, sender):
    program = only("welcome")
    at(START)
    await member("bo@example.com", token="token-bo-0001", push=False)
    at(START + 2 * timedelta(hours=1))
    ran = await worker(program, sender)
    assert (ran.found, ran.fired) == (1, 1)
    assert fcm.delivered == []  # queued, and suppressed by the policy: no consent


async def test_win_back_fires_on_entering_at_risk_not_again_within_90_days_then_again(fcm, sender):
    program = only("win_back")
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    for n in range(3):
        await buy(program, ana, f"r{n}", "4.50")
    base = await points(ana)
    at(START + 46 * DAY)  # day 46: no purchase for 45 days, a regular
    await segments.recompute(program)
    assert await segments.keys_of(ana) == ["at_risk"]
    await worker(program, sender)
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["We miss you"]
    assert await points(ana) == base + 50

    await buy(program, ana, "back", "4.50")  # back: out of at_risk...
    after_return = await points(ana)
    at(START + 92 * DAY)  # ...and slipping away again, 46 days after the first win-back
    await segments.recompute(program)
    assert await segments.keys_of(ana) == ["at_risk"]
    ran = await worker(program, sender)
    assert ran.found == 0  # within 90 days of the last one: no second win-back
    assert titles(fcm, "token-ana-0001") == ["We miss you"] and await points(ana) == after_return

    await buy(program, ana, "again", "4.50")
    at(START + 140 * DAY)  # the third time, 94 days after the first win-back
    await segments.recompute(program)
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["We miss you", "We miss you"]
    runs = await journeys.runs_of(ana)
    assert [r.state for r in runs] == ["DONE", "DONE"]


async def test_win_back_is_skipped_when_the_member_came_back_before_it_fired(fcm, sender):
    program = only("win_back").model_copy()
    program.journeys[0] = program.journeys[0].model_copy(update={"delay_hours": 24})
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    for n in range(3):
        await buy(program, ana, f"r{n}", "4.50")
    at(START + 46 * DAY)
    await segments.recompute(program)
    await worker(program, sender)
    at(START + 46 * DAY + timedelta(hours=2))
    await buy(program, ana, "back", "4.50")  # came back before the day's delay was over
    at(START + 47 * DAY + timedelta(hours=1))
    ran = await worker(program, sender)
    assert (ran.fired, ran.skipped) == (0, 1)
    assert fcm.delivered == []
    runs = await journeys.runs_of(ana)
    assert [(r.state, r.reason) for r in runs] == [("SKIPPED", "CONDITION: no longer in at_risk")]


async def test_tier_up_congratulates_each_tier_reached_once(fcm, sender):
    program = only("tier_up")
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    await buy(program, ana, "r1", "100.00")  # 1000 qualifying points: Silver at once
    await worker(program, sender)
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["Welcome to Silver"]
    assert fcm.delivered[0]["notification"]["body"] == "Your points now go further: enjoy your Silver benefits."
    at(START + timedelta(hours=2))
    await buy(program, ana, "r2", "400.00")  # 5000 more at x1.25: Gold
    await worker(program, sender)
    at(START + timedelta(hours=3))
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["Welcome to Silver", "Welcome to Gold"]
    assert [r.occurrence for r in await journeys.runs_of(ana)] == ["silver", "gold"]


async def test_the_tenth_purchase_is_celebrated_once(fcm, sender):
    program = only("tenth_visit")
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    for n in range(9):
        at(START + n * timedelta(hours=1))
        await buy(program, ana, f"r{n}", "3.00")
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == []
    before = await points(ana)
    await buy(program, ana, "r9", "3.00")
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["Ten visits!"]
    assert await points(ana) == before + 30 + 100  # the purchase's points and the bonus
    at(START + 2 * DAY)
    await buy(program, ana, "r10", "3.00")  # the eleventh
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["Ten visits!"]


async def test_the_anniversary_of_joining_fires_once_a_year(fcm, sender):
    program = only("anniversary")
    at(START)
    ana = await member("ana@example.com", token="token-ana-0001")
    base = await points(ana)
    at(START + 364 * DAY)
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == []
    for hours in (1, 5, 30):  # 10 January 2031, and the passes after it
        at(datetime(2031, 1, 10, 10, tzinfo=UTC) + timedelta(hours=hours))
        await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["A year together"]
    assert await points(ana) == base + 200
    at(datetime(2032, 1, 10, 11, tzinfo=UTC))
    await worker(program, sender)
    assert titles(fcm, "token-ana-0001") == ["A year together", "A year together"]
    assert [r.occurrence for r in await journeys.runs_of(ana)] == ["1", "2"]


async def test_who_joined_on_29_february_is_greeted_on_the_28th_in_other_years(fcm, sender):
    program = only("anniversary")
    at(datetime(2028, 2, 29, 12, tzinfo=UTC))
    await member("leap@example.com", token="token-leap-0001")
    at(datetime(2028, 3, 1, 12, tzinfo=UTC))
    await member("march@example.com", token="token-march-001")
    at(datetime(2029, 2, 28, 13, tzinfo=UTC))
    await worker(program, sender)
    assert (titles(fcm, "token-leap-0001"), titles(fcm, "token-march-001")) == (["A year together"], [])
    at(datetime(2029, 3, 1, 13, tzinfo=UTC))
    await worker(program, sender)
    assert (titles(fcm, "token-leap-0001"), titles(fcm, "token-march-001")) == (["A year together"],) * 2
