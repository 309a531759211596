"""Members: enrolment, lookup, profile and consent."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain import clock, db, text
from domain.errors import AlreadyExists, InvalidInput, NotEligible, NotFound
from domain.members import repository
from domain.members.numbers import looks_like_one, new_member_number, normalise
from domain.members.repository import AudienceMember, MemberEvent, MemberRow, Reachable
from domain.program.config import Program
from domain.wallets import ledger
from domain.wallets import service as wallets

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# local part without spaces or controls (text.visible refuses the invisible ones), then a
# domain of at least two labels
EMAIL = re.compile(rf"^[^@\s\x00-\x1f]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")
LOCALE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
OLDEST_BIRTHDAY = date(1900, 1, 1)
# Time zones of real places: the tz database's Area/Location names (Europe/Paris,
# America/Argentina/Buenos_Aires, and the old spellings phones still report, such as
# Asia/Calcutta), plus UTC (and Etc/UTC, which some systems report). Not `localtime`,
# `Factory` or `posixrules` (files, not zones), nor POSIX rules (EST5EDT), fixed offsets
# (Etc/GMT+5) or country aliases (US/Eastern, GB).
AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
_TIMEZONES = frozenset(z for z in available_timezones() if z.partition("/")[0] in AREAS and "/" in z) | {
    "UTC",
    "Etc/UTC",
}


@dataclass(frozen=True)
class Profile:
    """What enrolment and profile updates may set; None leaves a field as it is."""

    email: str | None = None
    display_name: str | None = None
    birthday: date | None = None
    timezone: str | None = None
    locale: str | None = None


def normal_email(value: str) -> str:
    """How emails are stored and compared: NFC, trimmed, lower-cased."""
    return unicodedata.normalize("NFC", value.strip()).lower()


def valid_email(value: str) -> str:
    email = normal_email(text.checked(value, "email"))
    if len(email) > 254 or not EMAIL.match(email) or not text.visible(email):
        raise InvalidInput("Enter a valid email address, like ana@example.com.", field="email")
    return email


def valid_display_name(value: str) -> str:
    return text.name(value, "displayName", what="A display name")


def valid_birthday(value: date) -> date:
    if value > clock.now().date():
        raise InvalidInput("A birthday cannot be in the future.", field="birthday")
    if value < OLDEST_BIRTHDAY:
        raise InvalidInput("A birthday must be after 1900-01-01.", field="birthday")
    return value


def valid_timezone(value: str) -> str:
    if len(value) > 64 or value not in _TIMEZONES:
        raise InvalidInput("Use an IANA time zone such as Europe/Paris.", field="timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput("Use an IANA time zone such as Europe/Paris.", field="timezone") from None
    return value


def valid_locale(value: str) -> str:
    if len(value) > 35 or not LOCALE.match(value):
        raise InvalidInput("Use a BCP 47 language tag such as en or fr-CA.", field="locale")
    return value


def _validated(profile: Profile) -> dict:
    out: dict = {}
    if profile.email is not None:
        out["email"] = valid_email(profile.email)
    if profile.display_name is not None:
        out["display_name"] = valid_display_name(profile.display_name)
    if profile.birthday is not None:
        out["birthday"] = valid_birthday(profile.birthday)
    if profile.timezone is not None:
        out["timezone"] = valid_timezone(profile.timezone)
    if profile.locale is not None:
        out["locale"] = valid_locale(profile.locale)
    return out


async def enroll(
    program: Program, profile: Profile, *, firebase_uid: str | None = None, referral_code: str | None = None
) -> MemberRow:
    """Enrol a new member in the entry tier, open their wallets and credit the welcome
    bonus, all in one transaction. An email already enrolled is ALREADY_EXISTS. With a
    friend's referral code, both get the referral bonus at the first purchase."""
    fields = _validated(profile)
    if "email" not in fields and firebase_uid is None:
        raise InvalidInput("An email address is required.", field="email")
    if referral_code is not None:
        code = normalise(referral_code)
        referrer = await repository.one("referral_code", code) if looks_like_one(code) else None
        if referrer is None:
            raise InvalidInput("This referral code is not one of ours.", field="referralCode")
        fields["referred_by_id"] = referrer.id
    now = clock.now()
    for _ in range(5):  # a member-number collision is ~impossible; retry rather than fail
        try:
            async with in_transaction() as conn:
                member = await repository.insert(
                    conn,
                    {
                        "id": uuid.uuid4(),
                        "member_number": new_member_number(),
                        "referral_code": new_member_number(),
                        "firebase_uid": firebase_uid,
                        "tier_key": program.entry_tier.key,
                        "timezone": "UTC",
                        "locale": "en",
                        "push_marketing": False,
                        "location_nudges": False,
                        "created_at": now,
                        "updated_at": now,
                        **fields,
                    },
                )
                await ledger.lock(conn, member.id, ledger.wallet_kinds(program), now)
                await wallets.grant_bonus(
                    conn,
                    program,
                    member.id,
                    program.bonuses.welcome,
                    rule="welcome",
                    description=f"Welcome! {program.bonuses.welcome} points",
                    dedupe_key=f"welcome:{member.id}",
                    now=now,
                )
                return member
        except IntegrityError as exc:
            text = str(exc)
            if "email" in text:
                raise AlreadyExists("A member with this email is already enrolled.", field="email") from None
            if "firebase_uid" in text:
                raise AlreadyExists("This sign-in is already linked to a member.") from None
            if "member_number" not in text and "referral_code" not in text:
                raise
    raise RuntimeError("could not allocate a member number")


async def get(member_id: uuid.UUID) -> MemberRow:
    member = await repository.one("id", member_id)
    if member is None:
        raise NotFound("No member with this id.", field="memberId")
    return member


async def find(member_id: uuid.UUID) -> MemberRow | None:
    return await repository.one("id", member_id)


def find_part(member_id: uuid.UUID) -> db.Part:
    """`find`'s statement as a part of another (`found_in` reads the member back)."""
    return repository.row_part(member_id)


def found_in(row: dict) -> MemberRow | None:
    return repository.row_of(row)


async def by_email(email: str) -> MemberRow | None:
    email = normal_email(email)
    return await repository.one("email", email) if len(email) <= 254 else None


async def by_number(member_number: str) -> MemberRow | None:
    number = normalise(member_number)
    return await repository.one("member_number", number) if looks_like_one(number) else None


async def by_firebase_uid(uid: str) -> MemberRow | None:
    return await repository.one("firebase_uid", uid)


async def update_profile(member_id: uuid.UUID, profile: Profile) -> MemberRow:
    """Change profile fields. A birthday, once set, is changed by staff only:
    it decides a yearly bonus, so members cannot move it around."""
    fields = _validated(profile)
    async with in_transaction() as conn:
        member = await repository.one("id", member_id, conn=conn, lock=True)
        if member is None:
            raise NotFound("No member with this id.", field="memberId")
        if "birthday" in fields and member.birthday not in (None, fields["birthday"]):
            raise NotEligible("Your birthday is already set; ask us to correct it.", field="birthday")
        if not fields:
            return member
        try:
            return await repository.update(member_id, {"updated_at": clock.now(), **fields}, conn=conn)
        except IntegrityError:
            raise AlreadyExists("A member with this email is already enrolled.", field="email") from None


async def update_preferences(
    member_id: uuid.UUID,
    *,
    push_marketing: bool | None = None,
    location_nudges: bool | None = None,
    timezone: str | None = None,
    locale: str | None = None,
) -> MemberRow:
    changes: dict = {}
    if push_marketing is not None:
        changes["push_marketing"] = push_marketing
    if location_nudges is not None:
        changes["location_nudges"] = location_nudges
    changes.update(_validated(Profile(timezone=timezone, locale=locale)))
    updated = await repository.update(member_id, {"updated_at": clock.now(), **changes})
    if updated is None:
        raise NotFound("No member with this id.", field="memberId")
    return updated


async def link_firebase(member: MemberRow, uid: str) -> MemberRow:
    try:
        linked = await repository.update(member.id, {"firebase_uid": uid, "updated_at": clock.now()})
    except IntegrityError:
        raise AlreadyExists("This sign-in is already linked to another member.") from None
    if linked is None:
        raise NotFound("No member with this id.", field="memberId")
    return linked


async def newest(
    limit: int,
    *,
    before: tuple[datetime, uuid.UUID] | None = None,
    search: str | None = None,
) -> list[MemberRow]:
    """Members newest first, keyset-paged on (created_at, id). `search` is an email or a
    member number as a cashier types it; anything else matches no one."""
    email = number = None
    if search:
        email, number = normal_email(search), normalise(search.strip())
        if "@" in email and len(email) <= 254:
            number = None
        elif looks_like_one(number):
            email = None
        else:
            return []
    return await repository.newest(limit, before, email, number)


# --- for the other areas: who may be reached, the tier columns, the referral ----------


async def reachable(member_ids: list[uuid.UUID]) -> list[Reachable]:
    """Time zone and push consents of these members (a deleted one is absent)."""
    return await repository.reachable(member_ids)


async def lock_location_consent(conn, member_id: uuid.UUID) -> bool:
    """Whether the member said yes to location nudges, their row locked until the caller commits
    (two reports of one member queue one after the other)."""
    return bool(await repository.lock_location_consent(conn, member_id))


async def tier_key(conn, member_id: uuid.UUID, *, lock: bool = False) -> str | None:
    return await repository.tier_key(conn, member_id, lock=lock)


async def set_tier(conn, member_id: uuid.UUID, tier_key: str | None, now: datetime) -> None:
    await repository.set_tier(conn, member_id, tier_key, now)


async def due_for_requalification(boundary: datetime) -> list[uuid.UUID]:
    """Members whose tier was last set (or who enrolled) before `boundary`, by id."""
    return await repository.due_for_requalification(boundary)


def referrer_awaiting_first_purchase(member_id: uuid.UUID) -> db.Part:
    """Who referred this member, while their first purchase has not landed: a part of the
    purchase's wallet lock (`ledger.lock_members(also=...)`)."""
    return repository.referrer_awaiting_first_purchase(member_id)


# --- reads for KPIs ---


async def joined_between(start: datetime, end: datetime, members: Sequence[uuid.UUID] | None = None) -> int:
    return await repository.joined_between(start, end, members)


async def ids_in_tier(tier_key: str) -> list[uuid.UUID]:
    return await repository.ids_in_tier(tier_key)


async def existing_ids(member_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    return await repository.existing_ids(member_ids) if member_ids else set()


async def audience(member_ids: list[uuid.UUID], tier_keys: list[str], conn=None) -> list[AudienceMember]:
    """A campaign's audience: the members named or holding one of the tiers."""
    return await repository.audience(member_ids, tier_keys, conn)


# --- what happened to members, for journeys ---


async def joined_in(start: datetime, end: datetime) -> list[MemberEvent]:
    """Enrolments in (start, end]."""
    return await repository.joined_in(start, end)


async def tier_moves_in(start: datetime, end: datetime) -> list[MemberEvent]:
    """Tier changes in (start, end], with the tier held now."""
    return await repository.tier_moves_in(start, end)


async def anniversaries_in(start: datetime, end: datetime) -> list[MemberEvent]:
    """Anniversaries of joining in (start, end], with the year count."""
    return await repository.anniversaries_in(start, end)
