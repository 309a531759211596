"""Caps and quiet hours for members far from UTC, across their local midnight: Los Angeles
(UTC-8 in January) and Tonga (UTC+13), through the real dispatch path, the real
firebase-admin client and the fake FCM. The demo program: quiet 21:00-09:00
member-local, at most 2 a day."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from tortoise import connections

from domain import clock
from domain.notifications import service as notifications
from notifications.dispatch import dispatch_due
from tests.notifications.conftest import PROGRAM, at, member, states

DAY = datetime(2030, 1, 15).date()  # winter in Los Angeles; Tonga keeps no summer time
ZONES = {"UTC-8": ("America/Los_Angeles", -8), "UTC+13": ("Pacific/Tongatapu", 13)}
CAPPED = ("CAMPAIGN", "SUPPRESSED", "DAILY_CAP: 2 already sent today")
SENT = ("CAMPAIGN", "SENT", None)


def local(zone: ZoneInfo, hour: int, minute: int = 0, days: int = 0) -> datetime:
    return datetime.combine(DAY + timedelta(days=days), time(hour, minute), tzinfo=zone)


def utc_date(when: datetime):
    return when.astimezone(UTC).date()


def zone_of(label: str) -> ZoneInfo:
    name, hours = ZONES[label]
    zone = ZoneInfo(name)
    assert local(zone, 12).utcoffset() == timedelta(hours=hours)  # the offset this test is about
    return zone


async def send_at(sender, when: datetime, member_id, count: int = 1):
    """At `when`, queue `count` campaigns due now for the member and run the dispatcher."""
    at(when)
    for i in range(count):
        key = f"{when.isoformat()}-{i}"
        await notifications.enqueue(member_id, kind="CAMPAIGN", title=key, body="x", dedupe_key=key, due_at=clock.now())
    return await dispatch_due(PROGRAM, sender)


# Two sent early in the local day, one more later that day: UTC's date changes in between.
CROSSING_UTC_MIDNIGHT = {"UTC-8": ((15, 0), (17, 0)), "UTC+13": ((10, 0), (14, 0))}
# Two sent late in the local day, one the next local morning: UTC's date is still the same.
NEXT_LOCAL_MORNING = {"UTC-8": ((20, 0), (9, 30)), "UTC+13": ((20, 0), (9, 30))}


@pytest.mark.parametrize("label", list(ZONES))
async def test_a_third_message_in_one_local_day_is_capped_though_utc_midnight_passed(fcm, sender, label):
    zone, (first, later) = zone_of(label), CROSSING_UTC_MIDNIGHT[label]
    ana = await member("ana@example.com", tz=zone.key, token="token-ana-1")
    two, third = local(zone, *first), local(zone, *later)
    assert two.date() == third.date() and utc_date(two) != utc_date(third)  # the case at hand

    assert (await send_at(sender, two, ana, count=2)).sent == 2
    result = await send_at(sender, third, ana)
    assert (result.sent, result.suppressed) == (0, 1)
    assert await states(ana) == [SENT, SENT, CAPPED]
    assert len(fcm.to("token-ana-1")) == 2

    morning = local(zone, 9, 30, days=1)  # the next local day: messages again
    assert (await send_at(sender, morning, ana)).sent == 1
    assert len(fcm.to("token-ana-1")) == 3


@pytest.mark.parametrize("label", list(ZONES))
async def test_the_next_local_morning_is_a_new_day_though_utcs_date_has_not_changed(fcm, sender, label):
    zone, (late, morning) = zone_of(label), NEXT_LOCAL_MORNING[label]
    bo = await member("bo@example.com", tz=zone.key, token="token-bo-1")
    two, next_day = local(zone, *late), local(zone, *morning, days=1)
    assert next_day.date() != two.date() and utc_date(two) == utc_date(next_day)  # the case at hand

    assert (await send_at(sender, two, bo, count=2)).sent == 2
    assert (await send_at(sender, next_day, bo, count=2)).sent == 2  # a fresh local day, a fresh cap
    assert (await send_at(sender, next_day + timedelta(hours=1), bo)).suppressed == 1  # and it holds there
    assert await states(bo) == [SENT] * 4 + [CAPPED]
    assert len(fcm.to("token-bo-1")) == 4


@pytest.mark.parametrize("label", list(ZONES))
async def test_quiet_hours_are_the_members_night_on_both_sides_of_local_midnight(fcm, sender, label):
    """21:30 and 02:00 local are both night, whatever the hour in UTC: each waits for
    09:00 local the next morning (the same morning for both), then goes."""
    zone = zone_of(label)
    cy = await member("cy@example.com", tz=zone.key, token="token-cy-1")
    nine = local(zone, 9, 0, days=1)
    for when in (local(zone, 21, 30), local(zone, 2, 0, days=1)):
        result = await send_at(sender, when, cy)
        assert (result.sent, result.deferred) == (0, 1), when
    rows = await connections.get("default").execute_query_dict(
        "SELECT state, due_at FROM notifications WHERE member_id = $1", [cy]
    )
    assert [(r["state"], r["due_at"]) for r in rows] == [("QUEUED", nine)] * 2

    at(local(zone, 8, 59, days=1))
    assert (await dispatch_due(PROGRAM, sender)).sent == 0
    at(local(zone, 9, 1, days=1))
    assert (await dispatch_due(PROGRAM, sender)).sent == 2
    assert len(fcm.to("token-cy-1")) == 2
