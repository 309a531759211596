"""Draw failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import Expired, NotEligible


class DrawClosed(Expired):
    """Entries are over: the draw closed, was drawn or was cancelled."""


class EntryCapReached(NotEligible):
    """The member holds as many entries as the draw allows one member."""


class AlreadyDrawn(NotEligible):
    """A drawn draw cannot be cancelled: its winners have their coupons."""
