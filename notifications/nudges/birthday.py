"""Birthday: the bonus and a greeting at the program's hour, member-local, once a year."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from tortoise import connections

from domain import clock
from domain.notifications import service as notifications
from domain.program.config import Program
from domain.wallets import service as wallets


async def queue_birthdays(program: Program, now: datetime | None = None) -> int:
    """For every member whose birthday it is today in their own time zone: grant the
    birthday bonus and queue the greeting for the birthday hour. Run it as often as
    you like (hourly covers every time zone): each is done once a year."""
    now = now or clock.now()
    rows = await connections.get("default").execute_query_dict(
        """
        SELECT id, timezone, birthday FROM members
        WHERE birthday IS NOT NULL
          AND to_char(birthday, 'MM-DD') = to_char(($1::timestamptz AT TIME ZONE timezone)::date, 'MM-DD')
        UNION
        -- born on 29 February: celebrated on the 28th when the year has no 29th
        SELECT id, timezone, birthday FROM members
        WHERE to_char(birthday, 'MM-DD') = '02-29'
          AND to_char(($1::timestamptz AT TIME ZONE timezone)::date, 'MM-DD') = '02-28'
          AND NOT (extract(year FROM ($1::timestamptz AT TIME ZONE timezone))::int % 4 = 0
                   AND (extract(year FROM ($1::timestamptz AT TIME ZONE timezone))::int % 100 <> 0
                        OR extract(year FROM ($1::timestamptz AT TIME ZONE timezone))::int % 400 = 0))
        """,
        [now],
    )
    queued = 0
    hour = time(program.notifications.birthday_hour)
    bonus = program.bonuses.birthday
    for row in rows:
        zone = ZoneInfo(row["timezone"])
        local_day = now.astimezone(zone).date()
        await wallets.grant_birthday_bonus(program, row["id"], local_day.year)
        body = f"We added {bonus} points to celebrate you." if bonus else "Have a wonderful day!"
        queued += await notifications.enqueue(
            row["id"],
            kind="BIRTHDAY",
            title="Happy birthday! 🎂",
            body=body,
            dedupe_key=f"birthday:{row['id']}:{local_day.year}",
            due_at=datetime.combine(local_day, hour, tzinfo=zone),
            data={"bonus": bonus},
        )
    return queued
