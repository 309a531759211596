"""Access tokens: JWTs with the algorithm pinned and every claim we rely on required."""

from __future__ import annotations

import math
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
# The longest a token may live (`loyalty token --ttl` mints staff tokens up to this), and
# how far ahead of our clock a token's `iat` may be (clocks of other servers drift).
MAX_LIFETIME = timedelta(days=366)
IAT_LEEWAY = timedelta(seconds=60)


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
            issued, expires = _instant(claims["iat"]), _instant(claims["exp"])
            subject = str(claims["sub"])
            if role is Role.MEMBER:
                uuid.UUID(subject)
            session = uuid.UUID(claims["sid"]) if "sid" in claims else None
        except (ValueError, TypeError, AttributeError):
            raise InvalidCredentials("Invalid access token: malformed claims") from None
        now = clock.now()
        # Compared as numbers first: exp = 10^20 is no date, and must not become one.
        if issued > (now + IAT_LEEWAY).timestamp():
            raise InvalidCredentials("Invalid access token: issued in the future")
        if expires - issued > MAX_LIFETIME.total_seconds():
            raise InvalidCredentials("Invalid access token: it lives longer than tokens may")
        if expires <= now.timestamp():
            raise InvalidCredentials("Access token has expired")
        return Principal(
            role=role, subject=subject, expires_at=datetime.fromtimestamp(int(expires), tz=now.tzinfo), session=session
        )


def _instant(claim: object) -> float:
    """A NumericDate claim (RFC 7519: seconds since the epoch, a JSON number)."""
    if isinstance(claim, bool) or not isinstance(claim, int | float) or not math.isfinite(claim):
        raise ValueError("not a NumericDate")
    return float(claim)
