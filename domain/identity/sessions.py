"""App sessions: sign-in with a verified Firebase identity, and refresh-token rotation."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import AlreadyExists, InvalidCredentials, InvalidInput
from domain.identity import repository
from domain.identity.tokens import Role, TokenIssuer
from domain.members import service as members
from domain.program.config import Program


@dataclass(frozen=True)
class FirebaseIdentity:
    """What a verified Firebase ID token says about its user."""

    uid: str
    email: str | None
    email_verified: bool
    name: str | None


@dataclass(frozen=True)
class Session:
    member: members.MemberRow
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _new_refresh_token(member_id: uuid.UUID, family: uuid.UUID, ttl: timedelta, conn=None) -> str:
    token = "rt_" + secrets.token_urlsafe(32)
    now = clock.now()
    await repository.insert(member_id, family, _hash(token), now, now + ttl, conn)
    return token


async def _member_for(program: Program, identity: FirebaseIdentity) -> members.MemberRow:
    member = await members.by_firebase_uid(identity.uid)
    if member is not None:
        return member
    if identity.email:
        existing = await members.by_email(identity.email)
        if existing is not None and existing.firebase_uid == identity.uid:
            return existing  # a concurrent first sign-in of this user enrolled them just now
        if existing is not None:
            # Linking by email is only safe when Firebase has verified the address;
            # otherwise anyone could claim a member's points by typing their email.
            if not identity.email_verified or existing.firebase_uid is not None:
                raise AlreadyExists(
                    "A member with this email exists: verify your email address to sign in.",
                    field="email",
                )
            return await members.link_firebase(existing, identity.uid)
    try:
        # The name is the provider's: one we would refuse from the app is left out, not a refused sign-in.
        name = members.valid_display_name(identity.name[:80]) if identity.name else None
    except InvalidInput:
        name = None
    try:
        return await members.enroll(
            program, members.Profile(email=identity.email, display_name=name), firebase_uid=identity.uid
        )
    except AlreadyExists:
        # A concurrent first sign-in of the same user enrolled them a moment ago.
        member = await members.by_firebase_uid(identity.uid)
        if member is None:
            raise
        return member


async def sign_in(program: Program, identity: FirebaseIdentity, issuer: TokenIssuer, refresh_ttl: timedelta) -> Session:
    """Sign a member in, enrolling them on their first sign-in."""
    member = await _member_for(program, identity)
    family = uuid.uuid4()
    refresh_token = await _new_refresh_token(member.id, family, refresh_ttl)
    access, expires_at = issuer.mint(Role.MEMBER, str(member.id), session=family)
    return Session(member, access, expires_at, refresh_token)


async def refresh(refresh_token: str, issuer: TokenIssuer, refresh_ttl: timedelta) -> Session:
    """Trade a refresh token for a new access token and the next refresh token.

    A refresh token works once. Presenting a used one means it was copied: the
    whole family is revoked, so both the thief and the member must sign in again.
    """
    now = clock.now()
    reused = False
    async with in_transaction() as conn:
        row = await repository.by_hash(_hash(refresh_token), conn=conn, lock=True)
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise InvalidCredentials("This refresh token is not valid: sign in again.")
        if row.used_at is not None:
            reused = True
            await repository.revoke_family(row.family, now, conn)
        else:
            await repository.mark_used(conn, row.id, now)
            next_token = await _new_refresh_token(row.member_id, row.family, refresh_ttl, conn)
    if reused:  # raised after the commit, so the revocation sticks
        raise InvalidCredentials("This refresh token was already used: sign in again.")
    member = await members.get(row.member_id)
    access, expires_at = issuer.mint(Role.MEMBER, str(member.id), session=row.family)
    return Session(member, access, expires_at, next_token)


async def sign_out(refresh_token: str) -> None:
    """Revoke the family of this refresh token (the app's sign-out)."""
    row = await repository.by_hash(_hash(refresh_token))
    if row is not None:
        await repository.revoke_family(row.family, clock.now())


async def is_revoked(session: uuid.UUID) -> bool:
    """Whether the session was signed out (or revoked for a reused refresh token):
    revocation marks every token of the family, so one indexed lookup answers."""
    return await repository.family_revoked(session)
