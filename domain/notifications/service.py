"""Devices and the notification record: what the app registers, what members see."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from domain import clock
from domain.errors import InvalidInput, NotFound
from domain.notifications import repository
from domain.notifications.repository import (
    ClaimedRow,
    DeviceRow,
    NotificationRow,
    Outcome,
    Queue,
    QueueDepth,
    SentCounts,
)

PLATFORMS = ("IOS", "ANDROID", "WEB")
# CAMPAIGN_TEST: a marketer's test of a campaign, to one named device.
KINDS = ("EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN", "JOURNEY", "DRAW_WON", "CAMPAIGN_TEST")


async def register_device(
    member_id: uuid.UUID,
    *,
    fcm_token: str,
    platform: str,
    installation_id: str | None = None,
    app_version: str | None = None,
) -> DeviceRow:
    """Register (or refresh) the app install's token for this member. A token that
    belonged to another member moves to this one: one install, one member."""
    token = valid_token(fcm_token)
    if platform not in PLATFORMS:
        raise InvalidInput(f"platform is one of {', '.join(PLATFORMS)}.", field="platform")
    if installation_id is not None and not 1 <= len(installation_id) <= 200:
        raise InvalidInput("installationId has 1 to 200 characters.", field="installationId")
    if app_version is not None and not 1 <= len(app_version) <= 40:
        raise InvalidInput("appVersion has 1 to 40 characters.", field="appVersion")
    try:
        return await repository.upsert_device(member_id, token, platform, installation_id, app_version, clock.now())
    except IntegrityError:  # the only foreign key: the member was deleted after the token was issued
        raise NotFound("No member with this id.", field="memberId") from None


def valid_token(fcm_token: str) -> str:
    token = fcm_token.strip()
    if not 8 <= len(token) <= 4096 or not token.isprintable() or " " in token:
        raise InvalidInput("This is not an FCM registration token.", field="fcmToken")
    return token


async def unregister_device(member_id: uuid.UUID, fcm_token: str) -> bool:
    """Sign-out: the member's token stops receiving pushes."""
    return await repository.delete_device(member_id, valid_token(fcm_token))


async def prune_tokens(tokens: list[str]) -> int:
    """FCM said these tokens are gone (UNREGISTERED, SENDER_ID_MISMATCH)."""
    return await repository.delete_tokens(tokens) if tokens else 0


async def enqueue(
    member_id: uuid.UUID,
    *,
    kind: str,
    title: str,
    body: str,
    dedupe_key: str,
    due_at: datetime,
    data: dict | None = None,
    conn=None,
    device_id: uuid.UUID | None = None,
) -> bool:
    """Record a notification to send at `due_at`, once per dedupe key. Returns
    whether it is new (False: this reason was recorded before). With `device_id`, only
    that device of the member gets it (if it is still theirs when it is sent)."""
    assert kind in KINDS
    return await repository.insert(
        member_id, kind, title[:120], body[:500], data or {}, dedupe_key[:200], due_at, clock.now(), conn, device_id
    )


async def enqueue_many(kind: str, rows: list[Queue], conn: BaseDBAsyncClient) -> int:
    """`enqueue` for many in one statement, inside the caller's transaction; each dedupe
    key once. Returns how many were new."""
    assert kind in KINDS
    return await repository.insert_many(kind, rows, clock.now(), conn) if rows else 0


async def with_devices(member_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these members have an app install to push to."""
    return await repository.with_devices(member_ids)


async def hold(notification_ids: list[uuid.UUID], conn: BaseDBAsyncClient) -> int:
    """Keep these notifications from the dispatcher (HELD) until `release`. Those a worker
    has in hand go out and are recorded; if it dies instead, they stay HELD when its lease
    lapses (not back in the queue), and one it is told to try later stays HELD too."""
    return await repository.hold(notification_ids, conn)


async def release(notification_ids: list[uuid.UUID], conn: BaseDBAsyncClient) -> int:
    """Held notifications back in the queue, due at once if their time has passed; one a
    worker still holds a live lease on goes back to that worker (SENDING), so it is not
    sent twice."""
    return await repository.release(notification_ids, clock.now(), conn)


async def opened_among(notification_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these notifications the member opened (the app reports it: markNotification)."""
    return await repository.opened_among(notification_ids) if notification_ids else set()


async def inbox(member_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None) -> list[NotificationRow]:
    """What the member was sent, newest first."""
    return await repository.sent_to(member_id, limit, before)


async def mark(member_id: uuid.UUID, notification_id: uuid.UUID, *, opened: bool) -> NotificationRow:
    """The member read (or opened) it; the first time counts."""
    notification = await repository.mark_seen(notification_id, member_id, clock.now(), opened)
    if notification is None:
        raise NotFound("No notification with this id.", field="notificationId")
    return notification


async def devices_of(member_id: uuid.UUID, limit: int = 50) -> list[DeviceRow]:
    """The member's app installs, most recently seen first (bounded: a member has a few)."""
    return await repository.devices_of(member_id, limit)


async def device(device_id: uuid.UUID) -> DeviceRow | None:
    return await repository.device(device_id)


async def notification(notification_id: uuid.UUID) -> NotificationRow | None:
    """A notification as the inbox shows it: only the ones that were sent."""
    return await repository.sent(notification_id)


# --- what the dispatcher and the metrics read ------------------------------------------


async def claim(now: datetime, limit: int, claimed_until: datetime, priority: list[str]) -> list[ClaimedRow]:
    """Take up to `limit` due notifications, highest priority first, with a lease until `claimed_until`."""
    return await repository.claim(now, limit, claimed_until, priority)


async def tokens_of(member_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    return await repository.tokens_of(member_ids)


async def device_tokens(device_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
    """device id -> (its member now, its FCM token); a removed device is absent."""
    return await repository.device_tokens(device_ids) if device_ids else {}


async def sent_since(
    member_ids: list[uuid.UUID], since: datetime, uncounted: tuple[str, ...] = ()
) -> dict[uuid.UUID, SentCounts]:
    """What each member was sent since `since`, leaving out the kinds `uncounted`."""
    return await repository.sent_since(member_ids, since, list(uncounted))


async def record_outcomes(rows: list[Outcome], conn: BaseDBAsyncClient | None = None) -> None:
    if rows:
        await repository.write_outcomes(rows, conn)


async def queue_depths(now: datetime, limit: int) -> list[QueueDepth]:
    """The push queue by kind: due rows (counted up to `limit`) and the oldest due row."""
    return await repository.queue_depths(now, limit, list(KINDS))
