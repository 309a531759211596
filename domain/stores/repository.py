"""The stores table (the stores added since the program file): the only module that queries it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from domain import db

_COLUMNS = "id, key, name, latitude, longitude, radius_meters, message, created_at"


@dataclass(frozen=True, slots=True)
class StoreRow:
    id: uuid.UUID
    key: str
    name: str
    latitude: float
    longitude: float
    radius_meters: int
    message: str | None
    created_at: datetime


async def all_stores() -> list[StoreRow]:
    rows = await db.client().execute_query_dict(f"SELECT {_COLUMNS} FROM stores")
    return [StoreRow(**r) for r in rows]


async def by_key(key: str) -> StoreRow | None:
    rows = await db.client().execute_query_dict(f"SELECT {_COLUMNS} FROM stores WHERE key = $1", [key])
    return StoreRow(**rows[0]) if rows else None


async def insert(row: StoreRow) -> StoreRow:
    """The new store; IntegrityError when its key is taken."""
    await db.client().execute_query(
        f"INSERT INTO stores ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [row.id, row.key, row.name, row.latitude, row.longitude, row.radius_meters, row.message, row.created_at],
    )
    return row
