"""Stores and who is near one. The reported position is used for the answer and
then dropped: nothing of it is stored (the caps only need which store and when)."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass

from domain import clock, text
from domain.errors import AlreadyExists, InvalidInput
from domain.program.config import Program
from domain.stores import repository
from domain.stores.repository import StoreRow

EARTH_RADIUS_M = 6_371_000
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class Place:
    key: str
    name: str
    latitude: float
    longitude: float
    radius_meters: int
    message: str | None


@dataclass(frozen=True)
class Nearby:
    place: Place
    distance_meters: float


def distance_meters(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def valid_position(latitude: float, longitude: float) -> tuple[float, float]:
    if not (math.isfinite(latitude) and -90 <= latitude <= 90):
        raise InvalidInput("latitude is between -90 and 90.", field="latitude")
    if not (math.isfinite(longitude) and -180 <= longitude <= 180):
        raise InvalidInput("longitude is between -180 and 180.", field="longitude")
    return latitude, longitude


def _place(s) -> Place:
    """A Place from the program's store or a stored row (both have these fields)."""
    return Place(s.key, s.name, s.latitude, s.longitude, s.radius_meters, s.message)


async def all_places(program: Program) -> list[Place]:
    places = {s.key: _place(s) for s in program.stores}
    for row in await repository.all_stores():
        places.setdefault(row.key, _place(row))
    return list(places.values())


async def nearby(program: Program, latitude: float, longitude: float) -> list[Nearby]:
    """The stores whose radius the position is within, nearest first."""
    latitude, longitude = valid_position(latitude, longitude)
    found = []
    for place in await all_places(program):
        d = distance_meters(latitude, longitude, place.latitude, place.longitude)
        if d <= place.radius_meters:
            found.append(Nearby(place, d))
    return sorted(found, key=lambda n: n.distance_meters)


async def add(
    program: Program, *, key: str, name: str, latitude: float, longitude: float, radius_meters: int, message: str | None
) -> StoreRow:
    if not KEY.match(key):
        raise InvalidInput("key: lower-case letters, digits, - and _, up to 40.", field="key")
    if any(s.key == key for s in program.stores) or await repository.by_key(key) is not None:
        raise AlreadyExists(f"A store with key {key!r} exists.", field="key")
    name = text.name(name, "name", what="A store name")
    valid_position(latitude, longitude)
    if not 10 <= radius_meters <= 50_000:
        raise InvalidInput("radiusMeters is between 10 and 50,000.", field="radiusMeters")
    if message is not None and len(message) > 300:
        raise InvalidInput("A message has at most 300 characters.", field="message")
    return await repository.insert(
        StoreRow(uuid.uuid4(), key, name, latitude, longitude, radius_meters, message, clock.now())
    )


async def place(program: Program, key: str) -> Place | None:
    """A store by its key: the program's own first, then those added since."""
    for s in program.stores:
        if s.key == key:
            return _place(s)
    row = await repository.by_key(key)
    return _place(row) if row else None
