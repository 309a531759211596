"""Members: enrolment, lookup, profile and consent."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain import clock, text
from domain.errors import AlreadyExists, InvalidInput, NotEligible, NotFound
from domain.members import repository
from domain.members.models import Member
from domain.members.numbers import looks_like_one, new_member_number, normalise
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
) -> Member:
    """Enrol a new member in the entry tier, open their wallets and credit the welcome
    bonus, all in one transaction. An email already enrolled is ALREADY_EXISTS. With a
    friend's referral code, both get the referral bonus at the first purchase."""
    fields = _validated(profile)
    if "email" not in fields and firebase_uid is None:
        raise InvalidInput("An email address is required.", field="email")
    if referral_code is not None:
        code = normalise(referral_code)
        referrer = await Member.get_or_none(referral_code=code).only("id") if looks_like_one(code) else None
        if referrer is None:
            raise InvalidInput("This referral code is not one of ours.", field="referralCode")
        fields["referred_by_id"] = referrer.id
    now = clock.now()
    for _ in range(5):  # a member-number collision is ~impossible; retry rather than fail
        try:
            async with in_transaction() as conn:
                member = await Member.create(
                    using_db=conn,
                    id=uuid.uuid4(),
                    member_number=new_member_number(),
                    referral_code=new_member_number(),
                    firebase_uid=firebase_uid,
                    tier_key=program.entry_tier.key,
                    created_at=now,
                    updated_at=now,
                    **fields,
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


async def get(member_id: uuid.UUID) -> Member:
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise NotFound("No member with this id.", field="memberId")
    return member


async def find(member_id: uuid.UUID) -> Member | None:
    return await Member.get_or_none(id=member_id)


async def by_email(email: str) -> Member | None:
    email = normal_email(email)
    return await Member.get_or_none(email=email) if len(email) <= 254 else None


async def by_number(member_number: str) -> Member | None:
    number = normalise(member_number)
    return await Member.get_or_none(member_number=number) if looks_like_one(number) else None


async def by_firebase_uid(uid: str) -> Member | None:
    return await Member.get_or_none(firebase_uid=uid)


async def update_profile(member_id: uuid.UUID, profile: Profile) -> Member:
    """Change profile fields. A birthday, once set, is changed by staff only:
    it decides a yearly bonus, so members cannot move it around."""
    fields = _validated(profile)
    async with in_transaction():
        member = await Member.select_for_update().get_or_none(id=member_id)
        if member is None:
            raise NotFound("No member with this id.", field="memberId")
        if "birthday" in fields and member.birthday not in (None, fields["birthday"]):
            raise NotEligible("Your birthday is already set; ask us to correct it.", field="birthday")
        if not fields:
            return member
        try:
            await Member.filter(id=member_id).update(updated_at=clock.now(), **fields)
        except IntegrityError:
            raise AlreadyExists("A member with this email is already enrolled.", field="email") from None
        await member.refresh_from_db()
        return member


async def update_preferences(
    member_id: uuid.UUID,
    *,
    push_marketing: bool | None = None,
    location_nudges: bool | None = None,
    timezone: str | None = None,
    locale: str | None = None,
) -> Member:
    changes: dict = {}
    if push_marketing is not None:
        changes["push_marketing"] = push_marketing
    if location_nudges is not None:
        changes["location_nudges"] = location_nudges
    changes.update(_validated(Profile(timezone=timezone, locale=locale)))
    updated = await Member.filter(id=member_id).update(updated_at=clock.now(), **changes)
    if not updated:
        raise NotFound("No member with this id.", field="memberId")
    return await get(member_id)


async def link_firebase(member: Member, uid: str) -> Member:
    member.firebase_uid = uid
    member.updated_at = clock.now()
    try:
        await member.save(update_fields=["firebase_uid", "updated_at"])
    except IntegrityError:
        raise AlreadyExists("This sign-in is already linked to another member.") from None
    return member


async def newest(
    limit: int,
    *,
    before: tuple[datetime, uuid.UUID] | None = None,
    search: str | None = None,
) -> list[Member]:
    """Members newest first, keyset-paged on (created_at, id). `search` is an email or a
    member number as a cashier types it; anything else matches no one."""
    query = Member.all()
    if search:
        email, number = normal_email(search), normalise(search.strip())
        if "@" in email and len(email) <= 254:
            query = query.filter(email=email)
        elif looks_like_one(number):
            query = query.filter(member_number=number)
        else:
            return []
    if before is not None:
        created_at, id_ = before
        query = query.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=id_))
    return await query.order_by("-created_at", "-id").limit(limit)


async def reachable(member_ids: list[uuid.UUID], tier_keys: list[str], conn=None) -> list[repository.Reachable]:
    """A campaign's audience: the members named or holding one of the tiers."""
    return await repository.reachable(member_ids, tier_keys, conn)
