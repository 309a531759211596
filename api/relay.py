"""Relay conventions: opaque global IDs, the Node interface, cursor connections."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import strawberry

from domain.errors import InvalidInput

T = TypeVar("T")

MAX_PAGE = 100
MAX_CURSOR = 200
MAX_SEQ = 2**63 - 1  # a PostgreSQL bigint
_SEQ = re.compile(r"[0-9]{1,19}")


def to_global_id(type_name: str, key: object) -> strawberry.ID:
    raw = f"{type_name}:{key}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def from_global_id(value: str, field: str = "id") -> tuple[str, str]:
    """(type name, key) of a global ID, or INVALID_INPUT when it is not one."""
    try:
        if len(value) > 200:
            raise ValueError
        padded = value + "=" * (-len(value) % 4)
        type_name, key = base64.urlsafe_b64decode(padded.encode("ascii")).decode().split(":", 1)
        if not type_name or not key:
            raise ValueError
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput(f"'{value[:40]}' is not a valid ID.", field=field) from None
    return type_name, key


def uuid_of(value: str, type_name: str, field: str = "id") -> uuid.UUID:
    """The UUID inside a global ID of `type_name`; INVALID_INPUT for any other ID."""
    got, key = from_global_id(value, field)
    if got != type_name:
        raise InvalidInput(f"This is a {got} ID; a {type_name} ID is expected.", field=field)
    try:
        return uuid.UUID(key)
    except ValueError:
        raise InvalidInput(f"'{value[:40]}' is not a valid ID.", field=field) from None


@strawberry.interface(description="An object with a global ID, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo


@dataclass(frozen=True)
class Page:
    """A validated request for one page: `first` items after `after`."""

    first: int
    after: str | None


def page(first: int, after: str | None) -> Page:
    if first < 1 or first > MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}.", field="first")
    return Page(first, after)


def _not_a_cursor() -> InvalidInput:
    return InvalidInput("after is not a cursor from this list.", field="after")


def encode_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode("|".join(str(p) for p in parts).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The `count` parts of a cursor made by encode_cursor, or INVALID_INPUT. Every
    cursor is checked here, whatever list or subscription it comes back to."""
    if len(cursor) > MAX_CURSOR:
        raise _not_a_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split("|")
    except (ValueError, UnicodeError, binascii.Error):
        parts = []
    if len(parts) != count:
        raise _not_a_cursor()
    return parts


def seq_cursor(seq: int) -> str:
    """The cursor of a list ordered on a bigint sequence (ledger entries, events)."""
    return encode_cursor(seq)


def seq_position(cursor: str | None) -> int | None:
    """Where a `seq_cursor` points; INVALID_INPUT for anything but 0..2^63-1 in ASCII digits."""
    if cursor is None:
        return None
    (raw,) = decode_cursor(cursor, 1)
    if not _SEQ.fullmatch(raw) or int(raw) > MAX_SEQ:
        raise _not_a_cursor()
    return int(raw)


def time_cursor(created_at: datetime, key: object) -> str:
    """The cursor of a list ordered newest first on (created_at, id)."""
    return encode_cursor(created_at.isoformat(), key)


def time_position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Where a `time_cursor` points, for keyset paging; INVALID_INPUT if it is not one."""
    if cursor is None:
        return None
    created_at, key = decode_cursor(cursor, 2)
    try:
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("our cursors carry their offset")
        # In UTC now: an offset that pushes the moment past year 1 or 9999 fails here, not in the driver.
        return moment.astimezone(UTC), uuid.UUID(key)
    except (ValueError, OverflowError):
        raise _not_a_cursor() from None


def connection(nodes: list, first: int, cursor_of) -> Connection:
    """Build a connection from up to first+1 fetched nodes (the extra one tells hasNextPage)."""
    has_next = len(nodes) > first
    nodes = nodes[:first]
    edges = [Edge(cursor=cursor_of(n), node=n) for n in nodes]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=False,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
