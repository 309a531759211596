"""Access tokens already verified, by their text: an app sends the same token with every
request for its whole life (15 minutes by default), and checking its signature and
claims again each time took ~5 % of the CPU of the app's `Me` (py-spy, bench/read)."""

from __future__ import annotations

from datetime import datetime

from cachetools import LRUCache

from domain import clock
from domain.identity.tokens import Principal, TokenIssuer

# A verified token costs ~1 KB here (its text and the principal): 4 MB at most.
MAX_TOKENS = 4096


class VerifiedTokens:
    """`verify` of the issuer, remembered. Only tokens that verified are kept, so junk
    sent by anyone cannot push them out faster than real tokens arrive. A remembered
    token answers as a fresh check would: refused once expired, and checked afresh if
    the clock reads earlier than when it was checked (a token issued "in the future"
    was only accepted relative to that moment)."""

    def __init__(self, issuer: TokenIssuer, size: int = MAX_TOKENS) -> None:
        self.issuer = issuer
        self._verified: LRUCache[str, tuple[Principal, datetime]] = LRUCache(maxsize=size)

    def verify(self, token: str) -> Principal:
        now = clock.now()
        found = self._verified.get(token)
        if found is not None:
            principal, checked_at = found
            if checked_at <= now < principal.expires_at:
                return principal
            del self._verified[token]
        principal = self.issuer.verify(token)  # raises InvalidCredentials, nothing kept
        self._verified[token] = (principal, now)
        return principal
