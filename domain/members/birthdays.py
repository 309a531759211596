"""Birthdays: whose it is today, member-local, and the bonus for it, once a year."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from domain.members import repository
from domain.program.config import Program
from domain.wallets import service as wallets


@dataclass(frozen=True)
class Birthday:
    member_id: uuid.UUID
    zone: ZoneInfo
    day: date  # today, in the member's time zone
    bonus: int  # the program's birthday bonus (granted once for the year, however often asked)


async def celebrate(program: Program, now: datetime) -> list[Birthday]:
    """Every member whose birthday it is today in their own time zone, with the
    birthday bonus granted. Run it as often as you like: each bonus is granted once a year."""
    rows = await repository.birthdays_on(now)
    celebrated = []
    for row in rows:
        zone = ZoneInfo(row.timezone)
        day = now.astimezone(zone).date()
        await wallets.grant_birthday_bonus(program, row.id, day.year)
        celebrated.append(Birthday(row.id, zone, day, program.bonuses.birthday))
    return celebrated
