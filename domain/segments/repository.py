"""The segments' tables: definitions, who is in each now, and every entry and exit.

Recomputation is ONE set-based statement per run (the exception the areas' rule allows
for speed): each segment's rules compiled to a WHERE over per-member aggregates that
read the members, purchases (for one member: its per-day rollup, purchase_days) and
devices tables directly, and the difference with the
current memberships written with its history in the same statement. No Python loop
over members; the analytics bench holds it beside hand-written SQL."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from domain import db
from domain.program.config import Program

# beside migrate's 727301 and the jobs' 727302
_LOCK = 727303
EVERYONE_WORK_MEM = "128MB"  # one run at a time (the lock above), once an hour
BUILTIN = {"new": "New", "occasional": "Occasional", "high_value": "High value", "at_risk": "At risk"}


@dataclass(frozen=True)
class SegmentRow:
    id: uuid.UUID
    key: str
    name: str
    builtin: bool
    rules: tuple[dict, ...]
    created_at: datetime
    member_count: int


@dataclass(frozen=True)
class Recomputed:
    entered: int
    left: int


@dataclass(frozen=True)
class ChangeRow:
    segment_key: str
    member_id: uuid.UUID
    change: str
    at: datetime


def _conn(conn: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return conn or connections.get("default")


async def ensure_builtins(now: datetime, conn: BaseDBAsyncClient | None = None) -> None:
    """The four segments that always exist (their rows: memberships refer to them)."""
    await _conn(conn).execute_query(
        "INSERT INTO segments (id, key, name, builtin, rules, created_by, created_at)"
        " SELECT gen_random_uuid(), k, n, true, '[]'::jsonb, '', $3 FROM unnest($1::text[], $2::text[]) AS b(k, n)"
        " ON CONFLICT (key) DO NOTHING",
        [list(BUILTIN), list(BUILTIN.values()), now],
    )


_SELECT = (
    "SELECT s.id, s.key, s.name, s.builtin, s.rules, s.created_at,"
    " (SELECT count(*) FROM segment_members sm WHERE sm.segment_id = s.id) AS member_count FROM segments s"
)


def _row(r: dict) -> SegmentRow:
    rules = r["rules"] if isinstance(r["rules"], list) else json.loads(r["rules"])
    return SegmentRow(r["id"], r["key"], r["name"], r["builtin"], tuple(rules), r["created_at"], int(r["member_count"]))


async def all_segments() -> list[SegmentRow]:
    """Built-ins first (in their fixed order), then custom ones, oldest first."""
    rows = await _conn(None).execute_query_dict(
        _SELECT + " ORDER BY s.builtin DESC, array_position($1::text[], s.key), s.created_at, s.id", [list(BUILTIN)]
    )
    return [_row(r) for r in rows]


async def definitions(conn: BaseDBAsyncClient | None = None) -> list[SegmentRow]:
    """Every segment without its count (what recomputation needs)."""
    rows = await _conn(conn).execute_query_dict(
        "SELECT id, key, name, builtin, rules, created_at, 0 AS member_count FROM segments ORDER BY id"
    )
    return [_row(r) for r in rows]


def before_member_part() -> db.Part:
    """What one member's recomputation needs first, as a part of the purchase's one read:
    every segment's definition (`definitions_of` reads them back), and the shared lock
    `recompute` would take (see there), held from here to the transaction's end."""
    return db.Part(
        "SELECT (SELECT array_agg(ROW(id, key, name, builtin, rules, created_at, 0) ORDER BY id) FROM segments)"
        " AS segment_definitions, pg_advisory_xact_lock_shared($1) IS NULL AS segments_locked",
        (_LOCK,),
    )


def definitions_of(row: dict) -> list[SegmentRow]:
    names = ("id", "key", "name", "builtin", "rules", "created_at", "member_count")
    return [_row(dict(zip(names, r, strict=True))) for r in row["segment_definitions"] or ()]


async def by_id(segment_id: uuid.UUID) -> SegmentRow | None:
    rows = await _conn(None).execute_query_dict(_SELECT + " WHERE s.id = $1", [segment_id])
    return _row(rows[0]) if rows else None


async def existing_keys(keys: list[str]) -> set[str]:
    rows = await _conn(None).execute_query_dict("SELECT key FROM segments WHERE key = ANY($1::text[])", [keys])
    return {r["key"] for r in rows}


async def insert(
    conn: BaseDBAsyncClient, *, key: str, name: str, rules: list[dict], actor: str, now: datetime
) -> uuid.UUID | None:
    """The new segment's id; None when the key is taken."""
    rows = await conn.execute_query_dict(
        "INSERT INTO segments (id, key, name, builtin, rules, created_by, created_at)"
        " VALUES ($1, $2, $3, false, $4::jsonb, $5, $6) ON CONFLICT (key) DO NOTHING RETURNING id",
        [uuid.uuid4(), key, name, json.dumps(rules), actor[:200], now],
    )
    return rows[0]["id"] if rows else None


async def member_ids_in(keys: list[str], conn: BaseDBAsyncClient | None = None) -> list[uuid.UUID]:
    """The members of any of these segments, each once, by id."""
    rows = await _conn(conn).execute_query_dict(
        "SELECT DISTINCT sm.member_id FROM segment_members sm JOIN segments s ON s.id = sm.segment_id"
        " WHERE s.key = ANY($1::text[]) ORDER BY sm.member_id",
        [keys],
    )
    return [r["member_id"] for r in rows]


async def keys_of_member(member_id: uuid.UUID) -> list[str]:
    rows = await _conn(None).execute_query_dict(
        "SELECT s.key FROM segment_members sm JOIN segments s ON s.id = sm.segment_id WHERE sm.member_id = $1"
        " ORDER BY s.key",
        [member_id],
    )
    return [r["key"] for r in rows]


async def changes_of(member_id: uuid.UUID) -> list[ChangeRow]:
    rows = await _conn(None).execute_query_dict(
        "SELECT s.key AS segment_key, c.member_id, c.change, c.at FROM segment_changes c"
        " JOIN segments s ON s.id = c.segment_id WHERE c.member_id = $1 ORDER BY c.id",
        [member_id],
    )
    return [ChangeRow(**r) for r in rows]


class _Sql:
    """Parameters and per-member aggregates a compiled statement needs.

    Over everyone, the aggregates read the purchases. For one member (`days`) they read
    `src`: the member's purchase_days rows (a row per UTC day and store, `t` its midnight)
    and, `raw`, their purchases of the UTC days where a window starts, so a window counts
    the whole days after its start from the days and its first day from the purchases
    after the start: as many rows however long the history."""

    def __init__(self, days: bool = False) -> None:
        self.params: list = []
        self.aggregates: list[str] = []
        self.days = days
        self.first_days: set[datetime] = set()  # midnights (UTC) of the days windows start in
        self.count = "SUM(n)" if days else "COUNT(*)"
        self.spend = "SUM(spend)" if days else "SUM(amount - refunded_amount)"

    def param(self, value: object, cast: str = "") -> str:
        if not cast and isinstance(value, datetime):
            cast = "::timestamptz"
        self.params.append(value)
        return f"${len(self.params)}{cast}"

    def aggregate(self, expression: str) -> str:
        """A per-member aggregate over the member's purchases (not fully refunded)."""
        name = f"a{len(self.aggregates)}"
        self.aggregates.append(f"{expression} AS {name}")
        return f"agg.{name}"


def _since(sql: _Sql, now: datetime, days: int | None) -> str:
    """The rows a window of `days` (None: ever) counts."""
    if not sql.days:
        return "true" if days is None else f"occurred_at > {sql.param(now - timedelta(days=days))}"
    if days is None:
        return "NOT raw"
    since = now - timedelta(days=days)
    first = datetime.combine(since.astimezone(UTC).date(), time(), UTC)
    sql.first_days.add(first)
    # whole days after since's day; of since's day, the purchases after since
    return f"(t > {sql.param(since)} AND (NOT raw OR t < {sql.param(first + timedelta(days=1))}))"


def _tier_keys(program: Program, keys: list[str]) -> list[str]:
    # Members of the entry tier may carry '' (never moved): the entry tier's key covers them.
    return [*keys, ""] if program.entry_tier.key in keys else list(keys)


def _rule(sql: _Sql, program: Program, now: datetime, rule: dict) -> str:
    kind = rule["kind"]
    window = rule.get("window_days")
    if kind == "TIER":
        return f"agg.tier_key = ANY({sql.param(_tier_keys(program, rule['tiers']), '::text[]')})"
    if kind == "DAYS_SINCE_LAST_PURCHASE":
        parts = []
        if rule.get("min") is not None:  # whole days since >= min; never bought counts as long ago
            parts.append(f"(agg.last_at IS NULL OR agg.last_at <= {sql.param(now - timedelta(days=rule['min']))})")
        if rule.get("max") is not None:  # whole days since <= max
            parts.append(f"agg.last_at > {sql.param(now - timedelta(days=rule['max'] + 1))}")
        return " AND ".join(parts)
    if kind in ("SPEND", "PURCHASE_COUNT"):
        what = sql.spend if kind == "SPEND" else sql.count
        column = sql.aggregate(f"COALESCE({what} FILTER (WHERE {_since(sql, now, window)}), 0)")
        parts = []
        if rule.get("min") is not None:
            parts.append(f"COALESCE({column}, 0) >= {sql.param(Decimal(str(rule['min'])), '::numeric')}")
        if rule.get("max") is not None:
            parts.append(f"COALESCE({column}, 0) <= {sql.param(Decimal(str(rule['max'])), '::numeric')}")
        return " AND ".join(parts)
    if kind == "BIRTHDAY_MONTH":
        return f"EXTRACT(MONTH FROM agg.birthday)::int = ANY({sql.param(rule['months'], '::int[]')})"
    if kind == "STORES_VISITED":
        if rule.get("store_ids"):
            stores = sql.param(rule["store_ids"], "::text[]")
            column = sql.aggregate(f"bool_or(store_key = ANY({stores}) AND {_since(sql, now, window)})")
            return f"COALESCE({column}, false)"
        column = sql.aggregate(
            f"COUNT(DISTINCT store_key) FILTER (WHERE store_key <> '' AND {_since(sql, now, window)})"
        )
        return f"COALESCE({column}, 0) >= {sql.param(int(rule['min']), '::int')}"
    if kind == "HAS_DEVICE":
        exists = "EXISTS (SELECT 1 FROM devices d WHERE d.member_id = agg.member_id)"
        return exists if rule.get("value", True) else f"NOT {exists}"
    if kind == "CONSENT":
        column = "agg.push_marketing" if rule["consent"] == "PUSH_MARKETING" else "agg.location_nudges"
        return column if rule.get("value", True) else f"NOT {column}"
    raise AssertionError(f"unvalidated rule kind {kind}")  # the service validates before storing


def _builtins(sql: _Sql, program: Program, now: datetime) -> dict[str, str]:
    """The four built-in segments, disjoint by priority: new, at_risk, high_value, occasional."""
    s = program.segments
    window = _since(sql, now, s.window_days)
    spend = sql.aggregate(f"COALESCE({sql.spend} FILTER (WHERE {window}), 0)")
    count = sql.aggregate(f"{sql.count} FILTER (WHERE {window})")
    new = f"(agg.created_at > {sql.param(now - timedelta(days=s.new_days))} AND agg.purchases <= 1)"
    at_risk = (
        f"(agg.purchases >= {sql.param(s.at_risk_purchases, '::int')}"
        f" AND agg.last_at <= {sql.param(now - timedelta(days=s.at_risk_days))})"
    )
    top = f" OR agg.tier_key = {sql.param(program.top_tier.key, '::text')}" if len(program.tiers) > 1 else ""
    high_value = (
        f"((COALESCE({spend}, 0) >= {sql.param(s.high_value_spend, '::numeric')}"
        f" AND COALESCE({count}, 0) >= {sql.param(s.high_value_purchases, '::int')}){top})"
    )
    yes = "COALESCE({}, false)".format
    return {
        "new": yes(new),
        "at_risk": f"{yes(at_risk)} AND NOT {yes(new)}",
        "high_value": f"{yes(high_value)} AND NOT {yes(new)} AND NOT {yes(at_risk)}",
        "occasional": f"COALESCE({count}, 0) >= 1 AND NOT {yes(new)} AND NOT {yes(at_risk)} AND NOT {yes(high_value)}",
    }


async def recompute(
    conn: BaseDBAsyncClient,
    program: Program,
    now: datetime,
    segments: list[SegmentRow],
    member_id: uuid.UUID | None = None,
    *,
    locked: bool = False,
) -> Recomputed:
    """Bring the memberships of `segments` (for one member, or everyone) in line with
    their rules, recording each entry and exit at `now`: one statement. Safe beside a
    concurrent run: a row is inserted or deleted once, and only the statement that did it
    records the change. Who enters and who leaves come from one full join of the wanted
    memberships with the current ones. Runs over everyone hold the lock alone, so they
    insert what is missing without a per-row conflict check; one member's runs may meet
    (two purchases at once) and insert ON CONFLICT DO NOTHING."""
    if not segments:
        return Recomputed(0, 0)
    # A run over everyone and one member's run (inside a purchase) could each hold a row
    # the other wants (A inserted here, B deleted there): a deadlock that would fail the
    # purchase. Everyone's runs take this lock alone; one member's share it. `locked`:
    # the caller took it already (`before_member_part`).
    if not locked:
        shared = "_shared" if member_id is not None else ""
        await conn.execute_query(f"SELECT pg_advisory_xact_lock{shared}($1)", [_LOCK])
    if member_id is None:
        # Everyone's run holds every member's aggregates and memberships at once (a few
        # tens of MB at 200,000 members): in memory, not spilled to disk in pieces (the
        # default 4MB sorted and hashed them through temp files: bench/analytics). The
        # purchases are still aggregated in the order of their covering index: with the
        # memory to hash them, the planner would, and that is 3x slower here.
        await conn.execute_query(f"SET LOCAL work_mem = '{EVERYONE_WORK_MEM}'")
        await conn.execute_query("SET LOCAL enable_hashagg = off")
    part = recompute_part(program, now, segments, member_id)
    rows = await conn.execute_query_dict(
        f"WITH {part.sql} SELECT COUNT(*) FILTER (WHERE change = 'ENTERED') AS entered,"
        " COUNT(*) FILTER (WHERE change = 'LEFT') AS left FROM seg_logged",
        list(part.params),
    )
    return Recomputed(int(rows[0]["entered"]), int(rows[0]["left"]))


def recompute_part(
    program: Program,
    now: datetime,
    segments: list[SegmentRow],
    member_id: uuid.UUID | None = None,
    *,
    added: str | None = None,
    tier_key: str | None = None,
    tier_when: str = "true",
) -> db.Part:
    """`recompute`'s statement as CTEs (`seg_logged` gives each change), for a statement
    that also writes the member's purchase (one member only; the caller holds the shared
    lock). Its other CTEs' writes are invisible here, so the statement tells: `added`, a
    SELECT of (store_key, amount, occurred_at) of the purchases it writes, and `tier_key`,
    the tier it moves the member to when the SQL condition `tier_when` holds."""
    sql = _Sql(days=member_id is not None)
    # Only what the statement uses: PostgreSQL cannot type a parameter it never sees.
    builtins = _builtins(sql, program, now) if any(s.builtin for s in segments) else {}
    desired = []
    for segment in segments:
        if segment.builtin:
            where = builtins[segment.key]
        else:
            where = " AND ".join(f"({_rule(sql, program, now, r)})" for r in segment.rules) or "true"
        desired.append(f"SELECT {sql.param(segment.id, '::uuid')} AS segment_id, member_id FROM agg WHERE {where}")
    ids = sql.param([s.id for s in segments], "::uuid[]")
    one = sql.param(member_id, "::uuid") if member_id is not None else None
    at = sql.param(now)
    aggregates = "".join(f", {a}" for a in sql.aggregates)
    columns = "".join(f", p.a{i}" for i in range(len(sql.aggregates)))
    tier = "m.tier_key"
    if tier_key is not None:
        tier = f"CASE WHEN {tier_when} THEN {sql.param(tier_key, '::text')} ELSE m.tier_key END"
    if one is None:
        p = f"""
            SELECT member_id, COUNT(*) AS purchases, MAX(occurred_at) AS last_at{aggregates}
            FROM purchases WHERE refunded_amount < amount GROUP BY member_id"""
    else:
        first_days = " OR ".join(
            f"(occurred_at >= {sql.param(d)} AND occurred_at < {sql.param(d + timedelta(days=1))})"
            for d in sorted(sql.first_days)
        )
        last_at = f"SELECT MAX(occurred_at) FROM purchases WHERE member_id = {one} AND refunded_amount < amount"
        new = ""
        if added:
            # the statement's own purchases: a day row each (a day's rows are summed), and raw
            # too when their day is one a window starts in
            last_at = f"SELECT GREATEST(({last_at}), (SELECT MAX(occurred_at) FROM added))"
            new = f"""
                UNION ALL
                SELECT store_key, 1, amount, (occurred_at AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC',
                       false FROM added
                UNION ALL
                SELECT store_key, 1, amount, occurred_at, true FROM added WHERE {first_days or "false"}"""
        p = f"""
            WITH {f"added AS ({added}), " if added else ""}src AS (
                SELECT store_key, purchases AS n, spend, day::timestamp AT TIME ZONE 'UTC' AS t, false AS raw
                FROM purchase_days WHERE member_id = {one} AND purchases > 0
                UNION ALL
                SELECT store_key, 1, amount - refunded_amount, occurred_at, true FROM purchases
                WHERE member_id = {one} AND refunded_amount < amount AND ({first_days or "false"}){new}
            )
            SELECT {one} AS member_id, SUM(n) FILTER (WHERE NOT raw) AS purchases, ({last_at}) AS last_at{aggregates}
            FROM src"""
    ctes = f"""
        seg_p AS ({p}
        ), agg AS MATERIALIZED (
            SELECT m.id AS member_id, {tier} AS tier_key, m.created_at, m.birthday, m.push_marketing,
                   m.location_nudges, COALESCE(p.purchases, 0) AS purchases, p.last_at{columns}
            FROM members m LEFT JOIN seg_p p ON p.member_id = m.id
            {f"WHERE m.id = {one}" if one else ""}
        ), seg_desired AS MATERIALIZED (
            {" UNION ALL ".join(desired)}
        ), seg_diff AS MATERIALIZED (
            -- one pass over the wanted and the current memberships: who enters, who leaves
            SELECT d.segment_id, d.member_id, sm.id AS current
            FROM seg_desired d
            FULL JOIN (
                SELECT id, segment_id, member_id FROM segment_members
                WHERE segment_id = ANY({ids}) {f"AND member_id = {one}" if one else ""}
            ) sm ON sm.segment_id = d.segment_id AND sm.member_id = d.member_id
            WHERE d.member_id IS NULL OR sm.id IS NULL
        ), seg_entered AS (
            INSERT INTO segment_members (segment_id, member_id, since)
            SELECT segment_id, member_id, {at} FROM seg_diff WHERE current IS NULL
            {"ON CONFLICT (segment_id, member_id) DO NOTHING" if one else ""}
            RETURNING segment_id, member_id
        ), seg_gone AS (
            DELETE FROM segment_members sm USING seg_diff
            WHERE seg_diff.member_id IS NULL AND sm.id = seg_diff.current
            RETURNING sm.segment_id, sm.member_id
        ), seg_logged AS (
            INSERT INTO segment_changes (segment_id, member_id, change, at)
            SELECT segment_id, member_id, 'ENTERED', {at} FROM seg_entered
            UNION ALL SELECT segment_id, member_id, 'LEFT', {at} FROM seg_gone
            RETURNING change
        )"""
    return db.Part(ctes, tuple(sql.params))


async def entries_in(key: str, start: datetime, end: datetime) -> list[tuple[uuid.UUID, datetime]]:
    """(member, when) of each entry into the segment in (start, end]."""
    rows = await _conn(None).execute_query_dict(
        "SELECT c.member_id, c.at FROM segment_changes c JOIN segments s ON s.id = c.segment_id"
        " WHERE s.key = $1 AND c.change = 'ENTERED' AND c.at > $2 AND c.at <= $3",
        [key, start, end],
    )
    return [(r["member_id"], r["at"]) for r in rows]
