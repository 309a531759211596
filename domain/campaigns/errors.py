"""Campaign failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import NotEligible


class AlreadyStarted(NotEligible):
    """Scheduling or cancelling a campaign whose sending began (or that is cancelled)."""
