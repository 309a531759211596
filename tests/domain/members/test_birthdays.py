"""The birthday use case of the members area: whose birthday it is, in their own time
zone, and the bonus granted once for the year however often the hourly job asks."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.members import birthdays
from domain.members import service as members
from domain.program.config import load
from domain.wallets import service as wallets

PROGRAM = load(None)  # the demo program: birthday bonus 200


async def points(member_id) -> int:
    (points_wallet, *_) = (await wallets.wallets_of([member_id]))[member_id]
    return points_wallet.balance


async def test_the_birthday_starts_at_midnight_member_local_and_pays_once():
    ahead = await members.enroll(
        PROGRAM, members.Profile(email="ahead@example.com", timezone="Pacific/Kiritimati", birthday=date(1990, 5, 17))
    )
    here = await members.enroll(PROGRAM, members.Profile(email="here@example.com", birthday=date(1991, 5, 17)))
    before = await points(ahead.id), await points(here.id)

    # 10:30 UTC on 16 May is 00:30 on 17 May on Kiritimati (UTC+14): only theirs has begun
    now = datetime(2030, 5, 16, 10, 30, tzinfo=UTC)
    for _ in range(3):
        (b,) = await birthdays.celebrate(PROGRAM, now)
        assert (b.member_id, b.day, b.bonus, str(b.zone)) == (ahead.id, date(2030, 5, 17), 200, "Pacific/Kiritimati")
    assert (await points(ahead.id), await points(here.id)) == (before[0] + 200, before[1])

    (b,) = await birthdays.celebrate(PROGRAM, datetime(2030, 5, 17, 10, 30, tzinfo=UTC))  # now 17 May in UTC
    assert b.member_id == here.id  # Kiritimati is on 18 May already
    assert await points(here.id) == before[1] + 200
    await birthdays.celebrate(PROGRAM, datetime(2031, 5, 17, 10, 30, tzinfo=UTC))
    assert await points(here.id) == before[1] + 400  # a new year, a new bonus
