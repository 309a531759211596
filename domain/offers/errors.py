"""Offer failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import DomainError


class OfferExhausted(DomainError):
    """The offer's usage limit is reached: no more members may clip it."""

    code = "OUT_OF_STOCK"


class OfferNotStarted(DomainError):
    code = "NOT_ELIGIBLE"


class CouponUsed(DomainError):
    """An offer's coupon code accepted at a till before."""

    code = "ALREADY_REDEEMED"
