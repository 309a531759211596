"""Birthday: a greeting at the program's hour, member-local, once a year, after the
bonus (granted by the members area: `domain.members.birthdays`)."""

from __future__ import annotations

from datetime import datetime, time

from domain import clock
from domain.members import birthdays
from domain.notifications import service as notifications
from domain.program.config import Program


async def queue_birthdays(program: Program, now: datetime | None = None) -> int:
    """For every member whose birthday it is today in their own time zone: the bonus,
    and the greeting queued for the birthday hour. Run it as often as you like (hourly
    covers every time zone): each is done once a year."""
    hour = time(program.notifications.birthday_hour)
    queued = 0
    for b in await birthdays.celebrate(program, now or clock.now()):
        queued += await notifications.enqueue(
            b.member_id,
            kind="BIRTHDAY",
            title="Happy birthday! 🎂",
            body=f"We added {b.bonus} points to celebrate you." if b.bonus else "Have a wonderful day!",
            dedupe_key=f"birthday:{b.member_id}:{b.day.year}",
            due_at=datetime.combine(b.day, hour, tzinfo=b.zone),
            data={"bonus": b.bonus},
        )
    return queued
