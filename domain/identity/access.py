"""Who may see what: a member sees what is theirs; staff and marketers see another
member's objects where they list them. The API asks here before it answers a lookup
by id (`node`), and says "not found" for what the caller may not see."""

from __future__ import annotations

import uuid

from domain.identity.tokens import Principal, Role

# Besides the owner, who lists each kind of member-owned object: staff and marketers reach
# members, their wallets, entries and inbox through `members`; purchases and coupons are
# the till's; a member's devices are theirs alone.
_LISTERS = (Role.STAFF, Role.MARKETER)
LISTED_BY: dict[str, tuple[Role, ...]] = {
    "Member": _LISTERS,
    "Wallet": _LISTERS,
    "CashbackWallet": _LISTERS,
    "LedgerEntry": _LISTERS,
    "CashbackEntry": _LISTERS,
    "Notification": _LISTERS,
    "Purchase": (Role.STAFF,),
    "Coupon": (Role.STAFF,),
    "Device": (),
}


def may_see(principal: Principal, kind: str, owner: uuid.UUID) -> bool:
    """Whether `principal` may see the object of `kind` (a key of LISTED_BY) owned by the member `owner`."""
    if principal.role is Role.MEMBER:
        return principal.member_id == owner
    return principal.role in LISTED_BY[kind]


# The program's own objects that are nobody's: who may look them up by id. Members reach
# offers through `me { offers }`'s rule instead (the offers area decides what targets them).
PROGRAM_OBJECTS: dict[str, tuple[Role, ...]] = {
    "Segment": (Role.MARKETER,),
    "Offer": (Role.MARKETER,),
    "Campaign": (Role.MARKETER,),
}


def may_see_program_object(principal: Principal, kind: str) -> bool:
    """Whether `principal` may see any object of `kind` (a key of PROGRAM_OBJECTS) by id."""
    return principal.role in PROGRAM_OBJECTS[kind]
