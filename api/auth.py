"""Role checks on fields. No token or a bad one: UNAUTHENTICATED; the wrong role: FORBIDDEN."""

from __future__ import annotations

import uuid
from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from api.context import Context
from api.errors import Forbidden, Unauthenticated
from domain.identity.tokens import Principal, Role


def require(info: Info, *roles: Role) -> Principal:
    context: Context = info.context
    principal = context.principal()
    if principal is None:
        raise Unauthenticated(context.auth_error or "Sign in: this needs an access token.")
    if principal.role not in roles:
        wanted = " or ".join(r.value for r in roles)
        raise Forbidden(f"This needs a {wanted} token; yours is a {principal.role.value} token.")
    return principal


def member_id(info: Info) -> uuid.UUID:
    """The signed-in member's id (FORBIDDEN for other roles)."""
    principal = require(info, Role.MEMBER)
    assert principal.member_id is not None
    return principal.member_id


class _RolePermission(BasePermission):
    roles: tuple[Role, ...] = ()

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        require(info, *self.roles)
        return True


class IsMember(_RolePermission):
    roles = (Role.MEMBER,)


class IsStaff(_RolePermission):
    roles = (Role.STAFF,)


class IsMarketer(_RolePermission):
    roles = (Role.MARKETER,)


class IsStaffOrMarketer(_RolePermission):
    roles = (Role.STAFF, Role.MARKETER)


class IsMemberOrMarketer(_RolePermission):
    roles = (Role.MEMBER, Role.MARKETER)


class IsSignedIn(_RolePermission):
    roles = (Role.MEMBER, Role.STAFF, Role.MARKETER)
