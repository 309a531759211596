"""Location, the use case behind `reportLocation`: a nudge when a member who said yes
walks into a store's radius and the store has something to say, at most once per
store per cooldown and N a day. `choose` decides; `report` reads and queues.

The nudge names the best offer the member can use at that store now and links to it:
offers sit above this area, so the caller hands in how to find it (`best_offer`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from domain import clock
from domain.members import service as members
from domain.notifications import repository
from domain.notifications import service as notifications
from domain.program.config import Notifications, Program
from domain.stores import service as stores


@dataclass(frozen=True)
class OfferHint:
    """An offer a nudge names: its id as the app links to it, and its title."""

    id: str
    title: str


# (member, store key) -> the best offer the member can use there now, if any
BestOffer = Callable[[uuid.UUID, str], Awaitable[OfferHint | None]]


async def report(
    program: Program,
    member_id: uuid.UUID,
    latitude: float,
    longitude: float,
    best_offer: BestOffer | None = None,
) -> list[stores.Nearby]:
    """The stores within reach; queues at most one nudge (the nearest store with a
    message) when consent and the caps allow, naming the member's best offer there."""
    found = await stores.nearby(program, latitude, longitude)
    speaking = [n for n in found if n.place.message]
    if not speaking:
        return found
    async with in_transaction() as conn:
        # The member row lock makes the caps hold when two reports race.
        if await members.lock_location_consent(conn, member_id):
            await _nudge(conn, program, member_id, speaking, best_offer)
    return found  # without consent nothing is queued, and nothing about the position is kept


async def _nudge(
    conn, program: Program, member_id: uuid.UUID, speaking: list[stores.Nearby], best_offer: BestOffer | None
) -> None:
    rules = program.notifications
    now = clock.now()
    since = now - max(timedelta(hours=rules.location_cooldown_hours), timedelta(days=1))
    recent = await repository.recent_location_nudges(conn, member_id, since)
    nearby = choose(rules, speaking, recent, now)
    if nearby is None:
        return
    offer = await best_offer(member_id, nearby.place.key) if best_offer else None
    body, data = nearby.place.message or "", {"store": nearby.place.key}
    if offer is not None:
        body = f"{body} Your offer here: {offer.title}."
        data["offerId"] = offer.id  # the app opens the offer from the push
    await notifications.enqueue(
        member_id,
        kind="LOCATION",
        title=nearby.place.name,
        body=body,
        dedupe_key=f"location:{member_id}:{nearby.place.key}:{now.isoformat()}",
        due_at=now,
        data=data,
        conn=conn,
    )


def choose(
    rules: Notifications, speaking: list[stores.Nearby], recent: list[tuple[str, datetime]], now: datetime
) -> stores.Nearby | None:
    """The store to nudge about: the nearest with a message that is not cooling down,
    unless the day's nudges (the last 24 hours) are spent. `recent`: (store, queued at)."""
    if sum(1 for _, at in recent if at > now - timedelta(days=1)) >= rules.location_max_per_day:
        return None
    cooling = {store for store, at in recent if at > now - timedelta(hours=rules.location_cooldown_hours)}
    return next((n for n in speaking if n.place.key not in cooling), None)
