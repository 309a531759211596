"""Reward and coupon failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import DomainError


class OutOfStock(DomainError):
    code = "OUT_OF_STOCK"


class AlreadyRedeemed(DomainError):
    code = "ALREADY_REDEEMED"
