"""The audit log has no failures of its own: writing an entry fails only with its transaction."""

from __future__ import annotations
