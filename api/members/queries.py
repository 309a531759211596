from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.auth import IsMember, IsStaff, IsStaffOrMarketer, member_id
from api.errors import Unauthenticated
from api.members.types import Member, MemberCard
from api.relay import Connection, connection, page, time_cursor, time_position
from domain.members import card
from domain.members import service as members


def _cursor(m: Member) -> str:
    return time_cursor(m.row.created_at, m.row.id)


@strawberry.type
class MembersQuery:
    @strawberry.field(permission_classes=[IsMember], description="The signed-in member.")
    async def me(self, info: Info) -> Member:
        row = await members.find(member_id(info))
        if row is None:
            raise Unauthenticated("This member no longer exists: sign in again.")
        return Member.of(row)

    @strawberry.field(permission_classes=[IsMember], description="A fresh QR card for the till.")
    async def member_card(self, info: Info) -> MemberCard:
        row = await members.find(member_id(info))
        if row is None:
            raise Unauthenticated("This member no longer exists: sign in again.")
        payload, expires_at = card.issue(info.context.services.signing_key, row.member_number)
        return MemberCard(qr_payload=payload, expires_at=expires_at)

    @strawberry.field(
        permission_classes=[IsStaff],
        description="The member whose card was scanned; errors EXPIRED or INVALID_INPUT.",
    )
    async def member_by_card(self, info: Info, qr_payload: str) -> Member | None:
        number = card.read(info.context.services.signing_key, qr_payload)
        row = await members.by_number(number)
        return Member.of(row) if row else None

    @strawberry.field(
        permission_classes=[IsStaffOrMarketer],
        description="Members, newest first; `search` matches an email or member number exactly.",
    )
    async def members(self, first: int = 20, after: str | None = None, search: str | None = None) -> Connection[Member]:
        p = page(first, after)
        before = time_position(p.after)
        rows = await members.newest(p.first + 1, before=before, search=search)
        return connection([Member.of(r) for r in rows], p.first, _cursor)
