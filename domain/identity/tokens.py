"""Access tokens: JWTs with the algorithm pinned and every claim we rely on required."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import jwt

from domain import clock
from domain.errors import InvalidCredentials

ALGORITHM = "HS256"  # pinned: the header's `alg` is never trusted
ISSUER = "loyalty"
AUDIENCE = "loyalty-api"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "role"]


class Role(StrEnum):
    MEMBER = "member"
    STAFF = "staff"
    MARKETER = "marketer"


@dataclass(frozen=True)
class Principal:
    """Who is asking. For a member, `subject` is the member's UUID; else a name."""

    role: Role
    subject: str
    expires_at: datetime
    # The app session (refresh-token family) a member token was issued for; signing
    # out revokes it, and a socket checks it at every operation.
    session: uuid.UUID | None = None

    @property
    def member_id(self) -> uuid.UUID | None:
        return uuid.UUID(self.subject) if self.role is Role.MEMBER else None


@dataclass(frozen=True)
class TokenIssuer:
    key: bytes
    access_ttl: timedelta = timedelta(minutes=15)

    def mint(
        self, role: Role, subject: str, ttl: timedelta | None = None, session: uuid.UUID | None = None
    ) -> tuple[str, datetime]:
        now = clock.now()
        expires_at = now + (ttl or self.access_ttl)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if session is not None:
            claims["sid"] = str(session)
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), expires_at

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                # exp is checked below against our clock, so tests can move time.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredentials(f"Invalid access token: {exc}") from None
        try:
            role = Role(claims["role"])
            expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=clock.now().tzinfo)
            subject = str(claims["sub"])
            if role is Role.MEMBER:
                uuid.UUID(subject)
            session = uuid.UUID(claims["sid"]) if "sid" in claims else None
        except (ValueError, TypeError, AttributeError):
            raise InvalidCredentials("Invalid access token: malformed claims") from None
        if expires_at <= clock.now():
            raise InvalidCredentials("Access token has expired")
        return Principal(role=role, subject=subject, expires_at=expires_at, session=session)
