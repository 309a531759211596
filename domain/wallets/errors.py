"""Wallet failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import DomainError


class InsufficientPoints(DomainError):
    code = "INSUFFICIENT_POINTS"
