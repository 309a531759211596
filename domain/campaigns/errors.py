"""Campaign failures (stable codes: see the contract's ErrorCode)."""

from __future__ import annotations

from domain.errors import InvalidInput, NotEligible


class AlreadyStarted(NotEligible):
    """Scheduling or cancelling a campaign whose sending began (or that is cancelled)."""


class SegmentsNotWired(InvalidInput):
    """Segment audiences wait for the segments area (merged separately)."""
