"""Still relevant? A nudge that can go stale between queueing and sending (points
spent before their expiry warning goes out) registers a check for its kind in
`notifications.nudges.RECHECKS`; the dispatcher asks it once per claimed batch, right
before deciding, and has no kind-specific code of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from domain.notifications.service import ClaimedRow


@dataclass(frozen=True)
class Queued:
    """A claimed notification, as the dispatcher and the re-checks see it."""

    id: uuid.UUID
    member_id: uuid.UUID
    kind: str
    title: str
    body: str
    data: dict[str, str]  # FCM data values are strings
    attempts: int
    due_at: datetime
    device_id: uuid.UUID | None = None  # only this device of the member (a test send)

    @classmethod
    def of(cls, row: ClaimedRow) -> Queued:
        data = row.data
        if isinstance(data, str):
            data = json.loads(data)
        return cls(
            id=row.id,
            member_id=row.member_id,
            kind=row.kind,
            title=row.title,
            body=row.body,
            data={str(k): str(v) for k, v in (data or {}).items()},
            attempts=row.attempts,
            due_at=row.due_at,
            device_id=row.device_id,
        )


# Given a batch's notifications of one kind: those no longer worth sending, with why
# ("CODE: words", as the policy's reasons).
Check = Callable[[list[Queued]], Awaitable[dict[uuid.UUID, str]]]
