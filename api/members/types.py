from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.types import Info

from api.auth import member_id
from api.errors import Forbidden
from api.notifications.mutations import Device, Notification
from api.offers.types import Offer, offer_cursor
from api.relay import Connection, Node, connection, page, time_cursor, time_position, to_global_id
from api.tiers.types import TierStatus
from api.wallets.types import CashbackWallet, Wallet
from domain import clock
from domain.members.service import MemberRow
from domain.notifications import service as notifications
from domain.offers import service as offers
from domain.tiers import service as tiers


@strawberry.type(description="Consent the member has given; both off until they say yes.")
class Preferences:
    push_marketing: bool
    location_nudges: bool
    timezone: str
    locale: str


@strawberry.type(description="A member of the loyalty program.")
class Member(Node):
    member_number: str = strawberry.field(description="Printed on the card; 10 characters.")
    display_name: str | None
    email: str | None
    birthday: date | None
    enrolled_at: datetime
    referral_code: str | None = strawberry.field(description="Share it: a friend who enrols with it earns you both.")
    preferences: Preferences
    row: strawberry.Private[MemberRow]
    # The tier status when it was read with the member (`me`), else read when asked.
    known_tier: strawberry.Private[tiers.TierStatus | None] = None

    @classmethod
    def of(cls, row: MemberRow, tier: tiers.TierStatus | None = None) -> Member:
        return cls(
            id=to_global_id("Member", row.id),
            member_number=row.member_number,
            display_name=row.display_name,
            email=row.email,
            birthday=row.birthday,
            enrolled_at=row.created_at,
            referral_code=row.referral_code,
            preferences=Preferences(
                push_marketing=row.push_marketing,
                location_nudges=row.location_nudges,
                timezone=row.timezone,
                locale=row.locale,
            ),
            row=row,
            known_tier=tier,
        )

    @strawberry.field(description="Tier, qualifying points and progress to the next tier.")
    async def tier(self, info: Info) -> TierStatus:
        if self.known_tier is not None:
            return TierStatus.of(self.known_tier)
        program = info.context.services.program
        return TierStatus.of(await tiers.status_for(program, self.row.id, self.row.tier_key, clock.now()))

    @strawberry.field(description="The member's points wallets (one today). Points are whole numbers.")
    async def wallets(self, info: Info) -> list[Wallet]:
        rows = await info.context.loaders.wallets.load(self.row.id)
        return [Wallet.of(row) for row in rows if row.kind == "POINTS"]

    @strawberry.field(description="Cashback in the program currency; null when the program pays none.")
    async def cashback_wallet(self, info: Info) -> CashbackWallet | None:
        program = info.context.services.program
        rows = await info.context.loaders.wallets.load(self.row.id)
        return next((CashbackWallet.of(program, r) for r in rows if r.kind == "CASHBACK"), None)

    @strawberry.field(description="The app installs that receive this member's pushes; only the member sees them.")
    async def devices(self, info: Info) -> list[Device]:
        if member_id(info) != self.row.id:
            raise Forbidden("Only the member sees their devices.")
        return [Device.of(d) for d in await notifications.devices_of(self.row.id)]

    @strawberry.field(description="Pushes the member was sent, newest first.")
    async def notifications(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Notification]:
        p = page(first, after)
        rows = await notifications.inbox(self.row.id, p.first + 1, time_position(p.after))
        return connection([Notification.of(r) for r in rows], p.first, lambda n: time_cursor(n.created_at, n.key))

    @strawberry.field(
        description="Offers for the member now: what targets them and is valid, not used yet; ending soonest first."
    )
    async def offers(self, info: Info, first: int = 20, after: str | None = None) -> Connection[Offer]:
        if member_id(info) != self.row.id:
            raise Forbidden("Only the member sees their offers.")
        p = page(first, after)
        program = info.context.services.program
        rows = await offers.for_member(program, self.row.id, p.first + 1, time_position(p.after))
        return connection([Offer.of(r) for r in rows], p.first, offer_cursor)


@strawberry.type(description="What the app shows as the member's QR code at the till.")
class MemberCard:
    qr_payload: str = strawberry.field(description="Encode this as a QR code; it changes every minute.")
    expires_at: datetime = strawberry.field(description="Fetch a new card before this moment.")
