"""Idempotency keys, shared by every area that accepts one (purchases, refunds,
adjustments, redemptions): one validation and one error, below the areas that use them."""

from __future__ import annotations

from domain.errors import DomainError, InvalidInput


class IdempotencyConflict(DomainError):
    """The key was used before for a different request."""

    code = "IDEMPOTENCY_CONFLICT"


def valid_key(value: str, field: str, limit: int = 100) -> str:
    value = value.strip()
    if not value or len(value) > limit or not value.isprintable():
        raise InvalidInput(f"{field} must be 1 to {limit} printable characters.", field=field)
    return value
