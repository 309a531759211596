"""The nudges: what queues each kind, and the re-checks the dispatcher asks by kind."""

from __future__ import annotations

from notifications.nudges import expiry
from notifications.recheck import Check

RECHECKS: dict[str, Check] = {expiry.KIND: expiry.stale}
