"""Domain failures. Each has a stable code that clients switch on (see the contract)."""

from __future__ import annotations


class DomainError(Exception):
    code = "INVALID_INPUT"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    code = "INVALID_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class Expired(DomainError):
    code = "EXPIRED"


class NotEligible(DomainError):
    code = "NOT_ELIGIBLE"


class InvalidCredentials(DomainError):
    """A token, refresh token or card that is forged, expired or revoked."""

    code = "UNAUTHENTICATED"
