from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer, IsMember, member_id
from api.errors import UserError
from api.relay import Node, to_global_id, uuid_of
from domain.errors import DomainError
from domain.notifications import location
from domain.notifications import service as notifications
from domain.notifications.service import DeviceRow, NotificationRow
from domain.offers import service as offers
from domain.program.config import Program
from domain.stores import service as stores


@strawberry.enum
class DevicePlatform(Enum):
    IOS = "IOS"
    ANDROID = "ANDROID"
    WEB = "WEB"


@strawberry.enum
class NotificationKind(Enum):
    EXPIRY = "EXPIRY"
    BIRTHDAY = "BIRTHDAY"
    LOCATION = "LOCATION"
    CAMPAIGN = "CAMPAIGN"
    JOURNEY = "JOURNEY"
    DRAW_WON = strawberry.enum_value("DRAW_WON", description="A draw the member entered named them a winner.")
    CAMPAIGN_TEST = strawberry.enum_value("CAMPAIGN_TEST", description="A marketer's test of a campaign.")


@strawberry.type(description="A phone or browser that receives the member's pushes.")
class Device(Node):
    platform: DevicePlatform
    app_version: str | None
    last_seen_at: datetime

    @classmethod
    def of(cls, row: DeviceRow) -> Device:
        return cls(
            id=to_global_id("Device", row.id),
            platform=DevicePlatform(row.platform),
            app_version=row.app_version,
            last_seen_at=row.last_seen_at,
        )


@strawberry.type(description="A push the member was sent, as the app's inbox shows it.")
class Notification(Node):
    kind: NotificationKind
    title: str
    body: str
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None
    opened_at: datetime | None
    key: strawberry.Private[object]

    @classmethod
    def of(cls, row: NotificationRow) -> Notification:
        return cls(
            id=to_global_id("Notification", row.id),
            kind=NotificationKind(row.kind),
            title=row.title,
            body=row.body,
            created_at=row.created_at,
            sent_at=row.sent_at,
            read_at=row.read_at,
            opened_at=row.opened_at,
            key=row.id,
        )


@strawberry.input
class RegisterDeviceInput:
    fcm_token: str = strawberry.field(description="The FCM registration token from the Firebase SDK.")
    platform: DevicePlatform
    installation_id: str | None = strawberry.field(default=None, description="The Firebase installation ID.")
    app_version: str | None = None


@strawberry.type
class RegisterDevicePayload:
    device: Device | None
    user_errors: list[UserError]


@strawberry.input
class UnregisterDeviceInput:
    fcm_token: str


@strawberry.type
class UnregisterDevicePayload:
    removed: bool
    user_errors: list[UserError]


@strawberry.input
class MarkNotificationInput:
    notification_id: strawberry.ID
    opened: bool = strawberry.field(default=False, description="True when the member tapped it open.")


@strawberry.type
class MarkNotificationPayload:
    notification: Notification | None
    user_errors: list[UserError]


@strawberry.type
class NotificationsMutation:
    @strawberry.mutation(permission_classes=[IsMember], description="Receive pushes on this app install.")
    async def register_device(self, info: Info, input: RegisterDeviceInput) -> RegisterDevicePayload:
        try:
            row = await notifications.register_device(
                member_id(info),
                fcm_token=input.fcm_token,
                platform=input.platform.value,
                installation_id=input.installation_id,
                app_version=input.app_version,
            )
        except DomainError as exc:
            return RegisterDevicePayload(device=None, user_errors=UserError.of(exc))
        return RegisterDevicePayload(device=Device.of(row), user_errors=[])

    @strawberry.mutation(permission_classes=[IsMember], description="Stop pushes to this install (sign-out).")
    async def unregister_device(self, info: Info, input: UnregisterDeviceInput) -> UnregisterDevicePayload:
        try:
            removed = await notifications.unregister_device(member_id(info), input.fcm_token)
        except DomainError as exc:
            return UnregisterDevicePayload(removed=False, user_errors=UserError.of(exc))
        return UnregisterDevicePayload(removed=removed, user_errors=[])

    @strawberry.mutation(permission_classes=[IsMember], description="The member read or opened a notification.")
    async def mark_notification(self, info: Info, input: MarkNotificationInput) -> MarkNotificationPayload:
        try:
            row = await notifications.mark(
                member_id(info),
                uuid_of(input.notification_id, "Notification", field="notificationId"),
                opened=input.opened,
            )
        except DomainError as exc:
            return MarkNotificationPayload(notification=None, user_errors=UserError.of(exc))
        return MarkNotificationPayload(notification=Notification.of(row), user_errors=[])


@strawberry.type(description="A store within reach of the reported position.")
class NearbyStore:
    id: strawberry.ID = strawberry.field(description="The store's ID: `node(id:)` answers with its Store.")
    name: str
    distance_meters: float


@strawberry.input
class ReportLocationInput:
    latitude: float
    longitude: float


@strawberry.type
class ReportLocationPayload:
    nearby_stores: list[NearbyStore]
    user_errors: list[UserError]


@strawberry.type(description="A store of the program.")
class Store(Node):
    key: str
    name: str
    latitude: float
    longitude: float
    radius_meters: int
    message: str | None

    @classmethod
    def of(cls, place) -> Store:
        """From a domain Place or a stored row: both carry these fields."""
        return cls(
            id=to_global_id("Store", place.key),
            key=place.key,
            name=place.name,
            latitude=place.latitude,
            longitude=place.longitude,
            radius_meters=place.radius_meters,
            message=place.message,
        )


@strawberry.input
class AddStoreInput:
    key: str = strawberry.field(description="Stable id: lower-case letters, digits, - and _.")
    name: str
    latitude: float
    longitude: float
    radius_meters: int = 150
    message: str | None = strawberry.field(default=None, description="What passers-by are told; none: no nudge.")


@strawberry.type
class AddStorePayload:
    store: Store | None
    user_errors: list[UserError]


def _best_offer(program: Program) -> location.BestOffer:
    async def best(member: uuid.UUID, store_key: str) -> location.OfferHint | None:
        row = await offers.best_at(program, member, store_key)
        return location.OfferHint(to_global_id("Offer", row.id), row.title) if row else None

    return best


@strawberry.type
class LocationMutation:
    @strawberry.mutation(
        permission_classes=[IsMember],
        description="Where the app is now: the stores within reach. With location consent and something to say, "
        "a nudge follows (at most once per store per cooldown). The position itself is not kept.",
    )
    async def report_location(self, info: Info, input: ReportLocationInput) -> ReportLocationPayload:
        try:
            program = info.context.services.program
            found = await location.report(
                program, member_id(info), input.latitude, input.longitude, best_offer=_best_offer(program)
            )
        except DomainError as exc:
            return ReportLocationPayload(nearby_stores=[], user_errors=UserError.of(exc))
        return ReportLocationPayload(
            nearby_stores=[
                NearbyStore(
                    id=to_global_id("Store", n.place.key),
                    name=n.place.name,
                    distance_meters=round(n.distance_meters, 1),
                )
                for n in found
            ],
            user_errors=[],
        )

    @strawberry.mutation(permission_classes=[IsMarketer], description="Add a store, with its radius and message.")
    async def add_store(self, info: Info, input: AddStoreInput) -> AddStorePayload:
        try:
            row = await stores.add(
                info.context.services.program,
                key=input.key,
                name=input.name,
                latitude=input.latitude,
                longitude=input.longitude,
                radius_meters=input.radius_meters,
                message=input.message,
            )
        except DomainError as exc:
            return AddStorePayload(store=None, user_errors=UserError.of(exc))
        return AddStorePayload(store=Store.of(row), user_errors=[])
