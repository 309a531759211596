"""Member numbers: 10 characters of Crockford base32 (no I, L, O, U), about 50 bits.

Short enough to read out at a till, too many to guess: with a million members,
a random guess hits one of them about once in a billion tries.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10


def new_member_number() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str:
    """What a cashier types: any case, dashes or spaces, O for 0 and I/L for 1."""
    cleaned = text.upper().replace("-", "").replace(" ", "")
    return cleaned.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def looks_like_one(text: str) -> bool:
    """Whether normalised text has the shape of a member number (and referral code)."""
    return len(text) == LENGTH and all(ch in ALPHABET for ch in text)
