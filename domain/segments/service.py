"""Segments: the four built-ins (thresholds in the program file) and marketers' own,
composed from rules. Membership is recomputed by the worker (`recompute_segments`) and
for one member inside each purchase's transaction; every entry and exit is recorded."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock, db, text
from domain.audit import service as audit
from domain.errors import AlreadyExists, InvalidInput, NotFound
from domain.program.config import Program
from domain.segments import repository
from domain.segments.errors import InvalidRule
from domain.segments.repository import BUILTIN, ChangeRow, Recomputed, SegmentRow
from domain.wallets import service as wallets

# memberIds in one extension (a larger audience: a segment)
MAX_EXTENSION_MEMBERS = 1000

__all__ = ["BUILTIN", "ChangeRow", "Recomputed", "Rule", "SegmentRow"]

KINDS = (
    "TIER",
    "DAYS_SINCE_LAST_PURCHASE",
    "SPEND",
    "PURCHASE_COUNT",
    "BIRTHDAY_MONTH",
    "STORES_VISITED",
    "HAS_DEVICE",
    "CONSENT",
)
CONSENTS = ("PUSH_MARKETING", "LOCATION_NUDGES")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_RULES = 20
MAX_DAYS = 3650


@dataclass(frozen=True)
class Rule:
    """One condition; a segment's members meet all of its rules. Which attributes count
    depends on `kind` (see the README); the others must be left out."""

    kind: str
    tiers: tuple[str, ...] | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    window_days: int | None = None
    months: tuple[int, ...] | None = None
    store_ids: tuple[str, ...] | None = None
    consent: str | None = None
    value: bool | None = None


# The attributes each kind takes (GraphQL names, for the error messages).
_TAKES = {
    "TIER": {"tiers"},
    "DAYS_SINCE_LAST_PURCHASE": {"min", "max"},
    "SPEND": {"min", "max", "windowDays"},
    "PURCHASE_COUNT": {"min", "max", "windowDays"},
    "BIRTHDAY_MONTH": {"months"},
    "STORES_VISITED": {"storeIds", "min", "windowDays"},
    "HAS_DEVICE": {"value"},
    "CONSENT": {"consent", "value"},
}
_NAMES = {
    "tiers": "tiers",
    "min": "min",
    "max": "max",
    "window_days": "windowDays",
    "months": "months",
    "store_ids": "storeIds",
    "consent": "consent",
    "value": "value",
}


def _whole(i: int, kind: str, name: str, value: Decimal | None, low: int, high: int) -> int | None:
    if value is None:
        return None
    if value != value.to_integral_value() or not low <= value <= high:
        raise InvalidRule(i, kind, name, f"{name} must be a whole number between {low} and {high}.")
    return int(value)


def valid_rule(program: Program, i: int, rule: Rule) -> dict:
    """The rule as stored (snake_case JSON), or InvalidRule naming it and what is wrong."""
    kind = rule.kind
    if kind not in KINDS:
        raise InvalidRule(i, kind[:40], "kind", f"kind is one of {', '.join(KINDS)}.")
    given = {_NAMES[k] for k in _NAMES if getattr(rule, k) is not None}
    extra = sorted(given - _TAKES[kind])
    if extra:
        raise InvalidRule(i, kind, extra[0], f"{extra[0]} does not apply to {kind}.")
    out: dict = {"kind": kind}
    if rule.window_days is not None:
        if not 1 <= rule.window_days <= MAX_DAYS:
            raise InvalidRule(i, kind, "windowDays", f"windowDays must be between 1 and {MAX_DAYS}.")
        out["window_days"] = rule.window_days
    return out | _CHECKS[kind](program, i, rule)


# One check per kind: each returns the kind's own attributes as stored.


def _tier(program: Program, i: int, rule: Rule) -> dict:
    if not rule.tiers:
        raise InvalidRule(i, rule.kind, "tiers", "tiers must name at least one tier.")
    for key in rule.tiers:
        if program.tier(key) is None:
            raise InvalidRule(i, rule.kind, "tiers", f"no tier {key[:32]!r} in this program.")
    return {"tiers": sorted(set(rule.tiers))}


def _bounds(program: Program, i: int, rule: Rule) -> dict:
    """min and max of a number of days, an amount spent or a count of purchases."""
    kind = rule.kind
    if rule.min is None and rule.max is None:
        raise InvalidRule(i, kind, "min", "give min, max or both.")
    out: dict = {}
    for name in ("min", "max"):
        value = getattr(rule, name)
        if value is None:
            continue
        if not value.is_finite() or value < 0:
            raise InvalidRule(i, kind, name, f"{name} must be zero or more.")
        if kind == "SPEND":
            out[name] = _amount(program, i, name, value)
        else:
            out[name] = _whole(i, kind, name, value, 0, MAX_DAYS if kind != "PURCHASE_COUNT" else 1_000_000)
    if rule.min is not None and rule.max is not None and rule.min > rule.max:
        raise InvalidRule(i, kind, "max", "max must be at least min.")
    return out


def _amount(program: Program, i: int, name: str, value: Decimal) -> str:
    if value > 10_000_000 or value != value.quantize(Decimal(1).scaleb(-program.currency_decimals)):
        raise InvalidRule(
            i,
            "SPEND",
            name,
            f"{name} is an amount of {program.currency} up to 10,000,000 "
            f"with at most {program.currency_decimals} decimals.",
        )
    return str(value)


def _birthday_month(program: Program, i: int, rule: Rule) -> dict:
    if not rule.months or any(not 1 <= m <= 12 for m in rule.months):
        raise InvalidRule(i, rule.kind, "months", "months are between 1 and 12, at least one.")
    return {"months": sorted(set(rule.months))}


def _stores_visited(program: Program, i: int, rule: Rule) -> dict:
    either = "give storeIds (visited any of them) or min (distinct stores)."
    if not rule.store_ids:
        if rule.min is None:
            raise InvalidRule(i, rule.kind, "storeIds", either)
        return {"min": _whole(i, rule.kind, "min", rule.min, 1, 10_000)}
    if rule.min is not None:
        raise InvalidRule(i, rule.kind, "min", either)
    if len(rule.store_ids) > 100 or any(not 1 <= len(s) <= 100 for s in rule.store_ids):
        raise InvalidRule(i, rule.kind, "storeIds", "storeIds are 1 to 100 store ids.")
    return {"store_ids": sorted(set(rule.store_ids))}


def _has_device(program: Program, i: int, rule: Rule) -> dict:
    return {"value": True if rule.value is None else rule.value}


def _consent(program: Program, i: int, rule: Rule) -> dict:
    if rule.consent not in CONSENTS:
        raise InvalidRule(i, rule.kind, "consent", f"consent is one of {', '.join(CONSENTS)}.")
    return {"consent": rule.consent, "value": True if rule.value is None else rule.value}


_CHECKS = {
    "TIER": _tier,
    "DAYS_SINCE_LAST_PURCHASE": _bounds,
    "SPEND": _bounds,
    "PURCHASE_COUNT": _bounds,
    "BIRTHDAY_MONTH": _birthday_month,
    "STORES_VISITED": _stores_visited,
    "HAS_DEVICE": _has_device,
    "CONSENT": _consent,
}


async def create(program: Program, *, key: str, name: str, rules: list[Rule], actor: str) -> SegmentRow:
    """A marketer's segment; its members are computed at once, and the change audited."""
    if not KEY.match(key):
        raise InvalidInput("key: lowercase letters, digits and _, starting with a letter, up to 40.", field="key")
    name = text.name(name, "name", what="A segment name")
    if not rules:
        raise InvalidInput("A segment needs at least one rule.", field="rules")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"A segment has at most {MAX_RULES} rules.", field="rules")
    stored = [valid_rule(program, i, r) for i, r in enumerate(rules)]
    now = clock.now()
    async with in_transaction() as conn:
        await repository.ensure_builtins(now, conn)
        segment_id = await repository.insert(conn, key=key, name=name, rules=stored, actor=actor, now=now)
        if segment_id is None:
            raise AlreadyExists(f"A segment with the key {key!r} exists.", field="key")
        await audit.record(
            conn,
            actor=actor,
            action="createSegment",
            subject_id=segment_id,
            details={"key": key, "name": name, "rules": stored},
        )
        row = SegmentRow(segment_id, key, name, False, tuple(stored), now, 0)
        await repository.recompute(conn, program, now, [row])
    found = await repository.by_id(segment_id)
    assert found is not None
    return found


async def all_segments() -> list[SegmentRow]:
    await repository.ensure_builtins(clock.now())
    return await repository.all_segments()


async def find(segment_id: uuid.UUID) -> SegmentRow | None:
    return await repository.by_id(segment_id)


async def existing_keys(keys: list[str]) -> set[str]:
    await repository.ensure_builtins(clock.now())
    return await repository.existing_keys(keys)


async def recompute(program: Program) -> Recomputed:
    """Every segment, for every member (the worker's job): one statement."""
    now = clock.now()
    await repository.ensure_builtins(now)
    segments = await repository.all_segments()
    async with in_transaction() as conn:
        return await repository.recompute(conn, program, now, segments)


def before_member_part() -> db.Part:
    """What `recompute_member` needs first, read in the purchase's one read (a round trip fewer)."""
    return repository.before_member_part()


def member_part(
    program: Program,
    member_id: uuid.UUID,
    before: dict,
    now: datetime,
    *,
    added: str,
    tier_key: str | None = None,
    tier_when: str = "true",
) -> db.Part | None:
    """One member's recomputation as CTEs of the statement that writes their purchase (a
    round trip fewer): `before` is a row of this transaction that carried
    `before_member_part`; `added`, `tier_key` and `tier_when` tell what that statement
    writes (see `repository.recompute_part`). None on a fresh database (the built-ins do
    not exist yet): `recompute_member` after that statement, then."""
    segments = repository.definitions_of(before)
    if sum(s.builtin for s in segments) < len(BUILTIN):
        return None
    return repository.recompute_part(
        program, now, segments, member_id, added=added, tier_key=tier_key, tier_when=tier_when
    )


async def recompute_member(
    conn: BaseDBAsyncClient, program: Program, member_id: uuid.UUID, before: dict | None = None
) -> Recomputed:
    """One member's segments, inside the caller's transaction (a refund's). `before`: a
    row of this transaction that carried `before_member_part`."""
    now = clock.now()
    segments = repository.definitions_of(before) if before else await repository.definitions(conn)
    if sum(s.builtin for s in segments) < len(BUILTIN):  # a fresh database: the built-ins first
        await repository.ensure_builtins(now, conn)
        segments = await repository.definitions(conn)
    return await repository.recompute(conn, program, now, segments, member_id, locked=before is not None)


async def members_of(keys: list[str], conn: BaseDBAsyncClient | None = None) -> list[uuid.UUID]:
    """Who is in any of these segments now (as the last recomputation left them)."""
    return await repository.member_ids_in(keys, conn) if keys else []


async def keys_of(member_id: uuid.UUID) -> list[str]:
    """The segments the member is in now."""
    return await repository.keys_of_member(member_id)


async def changes_of(member_id: uuid.UUID) -> list[ChangeRow]:
    """The member's entries and exits, oldest first."""
    return await repository.changes_of(member_id)


async def entries_in(key: str, start: datetime, end: datetime) -> list[tuple[uuid.UUID, datetime]]:
    """Who entered the segment in (start, end], and when (a journey's trigger)."""
    return await repository.entries_in(key, start, end)


async def extend_points_expiry(
    program: Program,
    *,
    segment_key: str | None,
    member_ids: list[uuid.UUID] | None,
    until: datetime,
    actor: str,
) -> list[uuid.UUID]:
    """A marketer extends the expiry of a segment's (as the last recomputation left it)
    or of named members' points to `until`: the wallets area records it on the ledger
    and in the audit log. Exactly one of the two audiences. The members whose points moved."""
    if (segment_key is None) == (member_ids is None):
        raise InvalidInput("Give either segmentKey or memberIds.", field="segmentKey")
    if member_ids is not None:
        if not 1 <= len(member_ids) <= MAX_EXTENSION_MEMBERS:
            raise InvalidInput(f"Give 1 to {MAX_EXTENSION_MEMBERS} memberIds.", field="memberIds")
        return await wallets.extend_expiry(
            program, member_ids, until, actor=actor, audience={"memberIds": len(member_ids)}, strict=True
        )
    if segment_key not in await existing_keys([segment_key]):
        raise NotFound(f"No segment {segment_key!r}.", field="segmentKey")
    audience = {"segmentKey": segment_key}
    return await wallets.extend_expiry(
        program, await members_of([segment_key]), until, actor=actor, audience=audience, strict=False
    )
