"""The member card: a QR payload the till scans, signed and valid for about a minute.

Format: `LC1.<member number>.<expiry, unix seconds>.<signature>`; the signature is
HMAC-SHA256 over the first three parts, truncated to 128 bits, base64url. Short so
the QR code stays small; expiring so a screenshot of it is worth little.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from domain import clock
from domain.errors import Expired, InvalidInput

PREFIX = "LC1"
LIFETIME = timedelta(seconds=60)


def _card_key(signing_key: bytes) -> bytes:
    # A key of its own, so a card signature can never pass as anything else.
    return hmac.new(signing_key, b"member-card", hashlib.sha256).digest()


def _sign(signing_key: bytes, body: str) -> str:
    digest = hmac.new(_card_key(signing_key), body.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(signing_key: bytes, member_number: str) -> tuple[str, datetime]:
    expires_at = (clock.now() + LIFETIME).replace(microsecond=0)
    body = f"{PREFIX}.{member_number}.{int(expires_at.timestamp())}"
    return f"{body}.{_sign(signing_key, body)}", expires_at


def read(signing_key: bytes, payload: str) -> str:
    """The member number on a valid card; InvalidInput if forged, Expired if old."""
    parts = payload.split(".")
    if len(parts) != 4 or parts[0] != PREFIX or len(payload) > 100:
        raise InvalidInput("This is not a member card.", field="qrPayload")
    body, signature = ".".join(parts[:3]), parts[3]
    if not hmac.compare_digest(_sign(signing_key, body), signature):
        raise InvalidInput("This member card's signature is not valid.", field="qrPayload")
    try:
        expires_at = datetime.fromtimestamp(int(parts[2]), tz=UTC)
    except (ValueError, OverflowError):
        raise InvalidInput("This is not a member card.", field="qrPayload") from None
    if expires_at <= clock.now():
        raise Expired("This member card has expired: ask the member to refresh it.", field="qrPayload")
    return parts[1]
