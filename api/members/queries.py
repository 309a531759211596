from __future__ import annotations

import strawberry
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode
from strawberry.types import Info

from api.auth import IsMember, IsStaff, IsStaffOrMarketer, member_id
from api.errors import Unauthenticated
from api.members.types import Member, MemberCard
from api.relay import Connection, connection, page, time_cursor, time_position
from domain import clock
from domain.members import card
from domain.members import service as members
from domain.tiers import service as tiers


def asks_for(info: Info, name: str) -> bool:
    """Whether a field called `name` is selected right below this one (through fragments
    too). It walks graphql-core's nodes (strawberry's `Info._raw_info`; strawberry is
    pinned below 0.400): strawberry's `selected_fields` would first convert the whole
    selection below, costing more than the statement saved."""
    raw = info._raw_info

    def within(selection_set: SelectionSetNode | None) -> bool:
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                if node.name.value == name:
                    return True
            elif isinstance(node, InlineFragmentNode):
                if within(node.selection_set):
                    return True
            elif isinstance(node, FragmentSpreadNode):
                fragment = raw.fragments.get(node.name.value)
                if fragment is not None and within(fragment.selection_set):
                    return True
        return False

    return any(within(field.selection_set) for field in raw.field_nodes)


def _cursor(m: Member) -> str:
    return time_cursor(m.row.created_at, m.row.id)


@strawberry.type
class MembersQuery:
    @strawberry.field(permission_classes=[IsMember], description="The signed-in member.")
    async def me(self, info: Info) -> Member:
        if asks_for(info, "tier"):  # the app's launch query: one statement for both
            found = await tiers.member_with_status(info.context.services.program, member_id(info), clock.now())
            row, tier = found if found else (None, None)
        else:
            row, tier = await members.find(member_id(info)), None
        if row is None:
            raise Unauthenticated("This member no longer exists: sign in again.")
        return Member.of(row, tier)

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
