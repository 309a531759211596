from __future__ import annotations

import uuid
from datetime import date, datetime

from tortoise import connections

from domain import clock
from domain.members import service as members
from domain.notifications import service as notifications
from domain.program.config import load

PROGRAM = load(None)  # the demo program: birthday bonus 200, quiet hours 21-09, 2 a day


def at(when: datetime) -> None:
    """Move the clock to `when` (it runs on from there)."""
    clock.reset()
    clock.advance(when - clock.now())


async def member(
    email: str,
    *,
    tz: str = "UTC",
    birthday: date | None = None,
    push: bool = True,
    location: bool = False,
    token: str | None = None,
    program=PROGRAM,
) -> uuid.UUID:
    """A member with consents set and one registered device."""
    m = await members.enroll(program, members.Profile(email=email, timezone=tz, birthday=birthday))
    await members.update_preferences(m.id, push_marketing=push, location_nudges=location)
    await notifications.register_device(m.id, fcm_token=token or f"token-{uuid.uuid4().hex}", platform="IOS")
    return m.id


async def states(member_id) -> list[tuple[str, str, str | None]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT kind, state, reason FROM notifications WHERE member_id = $1 ORDER BY created_at", [member_id]
    )
    return [(r["kind"], r["state"], r["reason"]) for r in rows]
