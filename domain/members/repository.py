"""The members table: the only module that queries it. Rows leave as `MemberRow`
(frozen; the same field names as the model); the caller's transaction, when it has
one, is passed as `conn`. Tiers read and move `tier_key` through `domain.members.service`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db

_COLUMNS = (
    "id, member_number, email, display_name, birthday, timezone, locale, push_marketing, location_nudges,"
    " firebase_uid, tier_key, tier_changed_at, referral_code, referred_by_id, created_at, updated_at"
)
_NAMES = tuple(name.strip() for name in _COLUMNS.split(","))
# The columns a profile or preference update may set (the keys callers pass are checked against it).
WRITABLE = frozenset(
    ("email", "display_name", "birthday", "timezone", "locale", "push_marketing", "location_nudges", "firebase_uid")
)


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: uuid.UUID
    member_number: str
    email: str | None
    display_name: str | None
    birthday: date | None
    timezone: str
    locale: str
    push_marketing: bool
    location_nudges: bool
    firebase_uid: str | None
    tier_key: str
    tier_changed_at: datetime | None
    referral_code: str | None
    referred_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Reachable:
    """What push policy needs of a member: their zone and consents."""

    id: uuid.UUID
    timezone: str
    push_marketing: bool
    location_nudges: bool


@dataclass(frozen=True, slots=True)
class BirthdayRow:
    id: uuid.UUID
    timezone: str
    birthday: date


async def one(
    column: str, value: object, *, conn: BaseDBAsyncClient | None = None, lock: bool = False
) -> MemberRow | None:
    """The member whose unique `column` (id, email, member_number, firebase_uid, referral_code) is `value`."""
    assert column in ("id", "email", "member_number", "firebase_uid", "referral_code")
    rows = await db.client(conn).execute_query_dict(
        f"SELECT {_COLUMNS} FROM members WHERE {column} = $1" + (" FOR UPDATE" if lock else ""), [value]
    )
    return MemberRow(**rows[0]) if rows else None


def row_part(member_id: uuid.UUID) -> db.Part:
    """`one("id", …)` as a part of a statement another area's service assembles (the
    app's Me: the member and their standing in one round trip); `row_of` reads it back."""
    return db.Part(f"SELECT {_COLUMNS} FROM members WHERE id = $1", (member_id,))


def row_of(row: dict) -> MemberRow | None:
    """The member in a row that carried `row_part` (None: no such member)."""
    return MemberRow(**{name: row[name] for name in _NAMES}) if row["id"] is not None else None


async def insert(conn: BaseDBAsyncClient, fields: dict) -> MemberRow:
    """A new member row from `fields` (column → value); IntegrityError on a unique clash."""
    names = list(fields)
    rows = await conn.execute_query_dict(
        f"INSERT INTO members ({', '.join(names)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(names)))})"
        f" RETURNING {_COLUMNS}",
        [fields[n] for n in names],
    )
    return MemberRow(**rows[0])


async def update(member_id: uuid.UUID, changes: dict, *, conn: BaseDBAsyncClient | None = None) -> MemberRow | None:
    """Set `changes` (WRITABLE columns and updated_at); the row as it is after, None: no such member."""
    assert set(changes) <= WRITABLE | {"updated_at"}
    names = list(changes)
    sets = ", ".join(f"{n} = ${i + 2}" for i, n in enumerate(names))
    rows = await db.client(conn).execute_query_dict(
        f"UPDATE members SET {sets} WHERE id = $1 RETURNING {_COLUMNS}", [member_id, *(changes[n] for n in names)]
    )
    return MemberRow(**rows[0]) if rows else None


async def newest(
    limit: int, before: tuple[datetime, uuid.UUID] | None, email: str | None, number: str | None
) -> list[MemberRow]:
    """Newest first, keyset-paged on (created_at, id), optionally one email or member number."""
    where, params = [], []
    for column, value in (("email", email), ("member_number", number)):
        if value is not None:
            params.append(value)
            where.append(f"{column} = ${len(params)}")
    if before is not None:
        params += list(before)
        where.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
    params.append(limit)
    rows = await db.client().execute_query_dict(
        f"SELECT {_COLUMNS} FROM members"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY created_at DESC, id DESC LIMIT ${len(params)}",
        params,
    )
    return [MemberRow(**r) for r in rows]


async def reachable(member_ids: list[uuid.UUID]) -> list[Reachable]:
    rows = await db.client().execute_query_dict(
        "SELECT id, timezone, push_marketing, location_nudges FROM members WHERE id = ANY($1::uuid[])", [member_ids]
    )
    return [Reachable(**r) for r in rows]


async def lock_location_consent(conn: BaseDBAsyncClient, member_id: uuid.UUID) -> bool | None:
    """The member's location consent, with their row locked (None: no such member)."""
    rows = await conn.execute_query_dict("SELECT location_nudges FROM members WHERE id = $1 FOR UPDATE", [member_id])
    return rows[0]["location_nudges"] if rows else None


async def birthdays_on(now: datetime) -> list[BirthdayRow]:
    """Every member whose birthday it is at `now` in their own time zone."""
    rows = await db.client().execute_query_dict(
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
    return [BirthdayRow(**r) for r in rows]


# --- the tier columns: written by tiers (through the members service) -----------------


async def tier_key(conn: BaseDBAsyncClient, member_id: uuid.UUID, *, lock: bool = False) -> str | None:
    rows = await conn.execute_query_dict(
        "SELECT tier_key FROM members WHERE id = $1" + (" FOR UPDATE" if lock else ""), [member_id]
    )
    return rows[0]["tier_key"] if rows else None


async def set_tier(conn: BaseDBAsyncClient, member_id: uuid.UUID, tier_key: str | None, now: datetime) -> None:
    """A new tier (or, with None, the same one for a new period) from `now`."""
    if tier_key is None:
        await conn.execute_query("UPDATE members SET tier_changed_at = $2 WHERE id = $1", [member_id, now])
    else:
        await conn.execute_query(
            "UPDATE members SET tier_key = $2, tier_changed_at = $3 WHERE id = $1", [member_id, tier_key, now]
        )


async def due_for_requalification(boundary: datetime) -> list[uuid.UUID]:
    rows = await db.client().execute_query_dict(
        "SELECT id FROM members WHERE COALESCE(tier_changed_at, created_at) < $1 ORDER BY id", [boundary]
    )
    return [r["id"] for r in rows]


def referrer_awaiting_first_purchase(member_id: uuid.UUID) -> db.Part:
    """Who referred this member (as `member_id`), while they have no purchase yet: a part
    of the purchase's wallet lock, read in that statement (the purchases table is read
    here too, in the one statement the purchase path can afford)."""
    return db.Part(
        "SELECT referred_by_id AS member_id FROM members m WHERE id = $1 AND referred_by_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.member_id = m.id)",
        (member_id,),
    )


# --- reads for KPIs ---


async def joined_between(start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None) -> int:
    """How many members enrolled in [start, end), of `members` when given."""
    params: list = [start, end]
    among = db.among("id", members, params)
    rows = await db.client().execute_query_dict(
        f"SELECT COUNT(*) AS n FROM members WHERE created_at >= $1 AND created_at < $2{among}", params
    )
    return int(rows[0]["n"])


async def ids_in_tier(tier_key: str) -> list[uuid.UUID]:
    """The members holding a tier (the set the KPIs of a tier are computed over)."""
    rows = await db.client().execute_query_dict("SELECT id FROM members WHERE tier_key = $1", [tier_key])
    return [r["id"] for r in rows]


async def existing_ids(member_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these ids are members (an offer's audience names members that exist)."""
    rows = await db.client().execute_query_dict("SELECT id FROM members WHERE id = ANY($1::uuid[])", [list(member_ids)])
    return {r["id"] for r in rows}


# --- reads for campaigns ---


@dataclass(frozen=True)
class AudienceMember:
    """A member as a campaign's audience needs them: who, where (time zone), which
    language, and whether they take marketing pushes."""

    id: uuid.UUID
    timezone: str
    locale: str
    push_marketing: bool


async def audience(member_ids: list[uuid.UUID], tier_keys: list[str], conn=None) -> list[AudienceMember]:
    """The members among `member_ids` or holding one of `tier_keys` ('' is the entry tier
    of a member never moved), in id order: one statement for any audience size."""
    rows = await (conn or db.client()).execute_query_dict(
        "SELECT id, timezone, locale, push_marketing FROM members"
        " WHERE id = ANY($1::uuid[]) OR tier_key = ANY($2::text[]) ORDER BY id",
        [member_ids, tier_keys],
    )
    return [AudienceMember(r["id"], r["timezone"], r["locale"], r["push_marketing"]) for r in rows]


# --- reads for journeys: what happened to members in (start, end] ---


@dataclass(frozen=True)
class MemberEvent:
    """Something that happened to a member: `what` is the tier reached, the anniversary's
    year count, or "joined"."""

    member_id: uuid.UUID
    what: str
    at: datetime


async def joined_in(start: datetime, end: datetime) -> list[MemberEvent]:
    rows = await db.client().execute_query_dict(
        "SELECT id, created_at FROM members WHERE created_at > $1 AND created_at <= $2", [start, end]
    )
    return [MemberEvent(r["id"], "joined", r["created_at"]) for r in rows]


async def tier_moves_in(start: datetime, end: datetime) -> list[MemberEvent]:
    """Members whose tier last changed in the window, with the tier they hold now."""
    rows = await db.client().execute_query_dict(
        "SELECT id, tier_key, tier_changed_at FROM members"
        " WHERE tier_changed_at > $1 AND tier_changed_at <= $2 AND tier_key <> ''",
        [start, end],
    )
    return [MemberEvent(r["id"], r["tier_key"], r["tier_changed_at"]) for r in rows]


# The month and day a member joined (UTC) as one number (0312: 12 March): the index
# members_joined_day (migration 0013) is on this very expression.
JOINED_DAY = (
    "((date_part('month', created_at AT TIME ZONE 'UTC') * 100 + date_part('day', created_at AT TIME ZONE 'UTC'))::int)"
)


def joined_days(start: datetime, end: datetime) -> list[int]:
    """The JOINED_DAY values whose anniversaries can fall in (start, end]: each UTC day
    from the day before to the day after (the anniversary arithmetic runs in the
    session's zone), and 29 February with the 28th (its anniversary in other years)."""
    first, last = (start - timedelta(days=1)).astimezone(UTC).date(), (end + timedelta(days=1)).astimezone(UTC).date()
    dates = [first + timedelta(days=n) for n in range(min((last - first).days, 366) + 1)]
    days = {d.month * 100 + d.day for d in dates}
    return sorted(days | ({229} if 228 in days else set()))


async def anniversaries_in(start: datetime, end: datetime) -> list[MemberEvent]:
    """Members whose n-th anniversary of joining (n >= 1) fell in the window: read by
    the days they joined (an index step per day), not over every member. The n-th
    anniversary is joining + n years (29 February + 1 year: 28 February)."""
    rows = await db.client().execute_query_dict(
        f"""
        SELECT id, years, created_at + make_interval(years => years) AS at FROM (
            SELECT id, created_at, y - (created_at + make_interval(years => y) > $2::timestamptz)::int AS years
            FROM (
                SELECT id, created_at, (date_part('year', $2::timestamptz) - date_part('year', created_at))::int AS y
                FROM members
                WHERE {JOINED_DAY} = ANY($3::int[]) AND created_at <= $2::timestamptz - interval '11 months'
            ) c
        ) m WHERE years >= 1 AND created_at + make_interval(years => years) > $1
        """,
        [start, end, joined_days(start, end)],
    )
    return [MemberEvent(r["id"], str(r["years"]), r["at"]) for r in rows]
