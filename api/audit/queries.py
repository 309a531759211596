from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer
from api.relay import Connection, connection, page, seq_cursor, seq_position, to_global_id
from domain.audit import service as audit


@strawberry.type(description="A marketer's change: who, what, when.")
class AuditEntry:
    actor: str = strawberry.field(description="The subject of the marketer token that made it.")
    action: str = strawberry.field(description="createSegment, createOffer, createReward, sendCampaignTest…")
    subject_id: strawberry.ID = strawberry.field(description="The global ID of what was created.")
    input: str = strawberry.field(description="The input as validated, compact JSON.")
    at: datetime
    seq: strawberry.Private[int]


_TYPES = {"createSegment": "Segment", "createOffer": "Offer", "createReward": "Reward", "sendCampaignTest": "Campaign"}


@strawberry.type
class AuditQuery:
    @strawberry.field(permission_classes=[IsMarketer], description="Marketers' changes, newest first.")
    async def audit_log(self, info: Info, first: int = 20, after: str | None = None) -> Connection[AuditEntry]:
        p = page(first, after)
        rows = await audit.entries(p.first + 1, seq_position(p.after))
        nodes = [
            AuditEntry(
                actor=r.actor,
                action=r.action,
                subject_id=to_global_id(_TYPES.get(r.action, "Unknown"), r.subject_id),
                input=r.details,
                at=r.at,
                seq=r.id,
            )
            for r in rows
        ]
        return connection(nodes, p.first, lambda n: seq_cursor(n.seq))
