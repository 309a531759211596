"""Devices and the notification record: what the app registers, what members see."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from domain import clock
from domain.errors import InvalidInput, NotFound
from domain.notifications.models import Device, Notification

PLATFORMS = ("IOS", "ANDROID", "WEB")
KINDS = ("EXPIRY", "BIRTHDAY", "LOCATION", "CAMPAIGN")


async def register_device(
    member_id: uuid.UUID,
    *,
    fcm_token: str,
    platform: str,
    installation_id: str | None = None,
    app_version: str | None = None,
) -> Device:
    """Register (or refresh) the app install's token for this member. A token that
    belonged to another member moves to this one: one install, one member."""
    token = valid_token(fcm_token)
    if platform not in PLATFORMS:
        raise InvalidInput(f"platform is one of {', '.join(PLATFORMS)}.", field="platform")
    if installation_id is not None and not 1 <= len(installation_id) <= 200:
        raise InvalidInput("installationId has 1 to 200 characters.", field="installationId")
    if app_version is not None and not 1 <= len(app_version) <= 40:
        raise InvalidInput("appVersion has 1 to 40 characters.", field="appVersion")
    now = clock.now()
    try:
        rows = await connections.get("default").execute_query_dict(
            """
            INSERT INTO devices (id, member_id, fcm_token, installation_id, platform, app_version, last_seen_at,
                                 created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
            ON CONFLICT (fcm_token) DO UPDATE SET member_id = EXCLUDED.member_id, platform = EXCLUDED.platform,
                installation_id = COALESCE(EXCLUDED.installation_id, devices.installation_id),
                app_version = COALESCE(EXCLUDED.app_version, devices.app_version), last_seen_at = EXCLUDED.last_seen_at
            RETURNING id
            """,
            [uuid.uuid4(), member_id, token, installation_id, platform, app_version, now],
        )
    except IntegrityError:  # the only foreign key: the member was deleted after the token was issued
        raise NotFound("No member with this id.", field="memberId") from None
    return await Device.get(id=rows[0]["id"])


def valid_token(fcm_token: str) -> str:
    token = fcm_token.strip()
    if not 8 <= len(token) <= 4096 or not token.isprintable() or " " in token:
        raise InvalidInput("This is not an FCM registration token.", field="fcmToken")
    return token


async def unregister_device(member_id: uuid.UUID, fcm_token: str) -> bool:
    """Sign-out: the member's token stops receiving pushes."""
    return bool(await Device.filter(member_id=member_id, fcm_token=valid_token(fcm_token)).delete())


async def prune_tokens(tokens: list[str]) -> int:
    """FCM said these tokens are gone (UNREGISTERED, SENDER_ID_MISMATCH)."""
    return await Device.filter(fcm_token__in=tokens).delete() if tokens else 0


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
) -> bool:
    """Record a notification to send at `due_at`, once per dedupe key. Returns
    whether it is new (False: this reason was recorded before)."""
    assert kind in KINDS
    rows = await (conn or connections.get("default")).execute_query_dict(
        """
        INSERT INTO notifications (id, member_id, kind, title, body, data, dedupe_key, state, due_at, attempts,
                                   created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, 'QUEUED', $8, 0, $9)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        """,
        [
            uuid.uuid4(),
            member_id,
            kind,
            title[:120],
            body[:500],
            json.dumps(data or {}),
            dedupe_key[:200],
            due_at,
            clock.now(),
        ],
    )
    return bool(rows)


@dataclass(frozen=True)
class Queue:
    """One notification to queue (many at once: a campaign's audience)."""

    id: uuid.UUID
    member_id: uuid.UUID
    title: str
    body: str
    dedupe_key: str
    due_at: datetime
    data: dict


async def enqueue_many(kind: str, rows: list[Queue], conn) -> int:
    """`enqueue` for many in one statement, inside the caller's transaction; each dedupe
    key once. Returns how many were new."""
    assert kind in KINDS
    if not rows:
        return 0
    done = await conn.execute_query_dict(
        """
        INSERT INTO notifications (id, member_id, kind, title, body, data, dedupe_key, state, due_at, attempts,
                                   created_at)
        SELECT q.id, q.member_id, $1, q.title, q.body, q.data, q.dedupe_key, 'QUEUED', q.due_at, 0, $8
        FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::text[], $9::timestamptz[])
             AS q(id, member_id, title, body, data, dedupe_key, due_at)
        ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
        """,
        [
            kind,
            [r.id for r in rows],
            [r.member_id for r in rows],
            [r.title[:120] for r in rows],
            [r.body[:500] for r in rows],
            [json.dumps(r.data) for r in rows],
            [r.dedupe_key[:200] for r in rows],
            clock.now(),
            [r.due_at for r in rows],
        ],
    )
    return len(done)


async def with_devices(member_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these members have an app install to push to."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT DISTINCT member_id FROM devices WHERE member_id = ANY($1::uuid[])", [member_ids]
    )
    return {r["member_id"] for r in rows}


async def hold(notification_ids: list[uuid.UUID], conn) -> int:
    """Keep these queued notifications from the dispatcher (HELD) until `release`; those a
    worker has claimed already go out."""
    rows = await conn.execute_query_dict(
        "UPDATE notifications SET state = 'HELD' WHERE id = ANY($1::uuid[]) AND state = 'QUEUED' RETURNING id",
        [notification_ids],
    )
    return len(rows)


async def release(notification_ids: list[uuid.UUID], conn) -> int:
    """Held notifications back in the queue, due at once if their time has passed."""
    rows = await conn.execute_query_dict(
        "UPDATE notifications SET state = 'QUEUED' WHERE id = ANY($1::uuid[]) AND state = 'HELD' RETURNING id",
        [notification_ids],
    )
    return len(rows)


async def opened_among(notification_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these notifications the member opened (the app reports it: markNotification)."""
    if not notification_ids:
        return set()
    rows = await connections.get("default").execute_query_dict(
        "SELECT id FROM notifications WHERE id = ANY($1::uuid[]) AND opened_at IS NOT NULL", [notification_ids]
    )
    return {r["id"] for r in rows}


async def inbox(member_id: uuid.UUID, limit: int, before: tuple[datetime, uuid.UUID] | None) -> list[Notification]:
    """What the member was sent, newest first."""
    query = Notification.filter(member_id=member_id, state="SENT")
    if before is not None:
        created_at, id_ = before
        query = query.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=id_))
    return await query.order_by("-created_at", "-id").limit(limit)


async def mark(member_id: uuid.UUID, notification_id: uuid.UUID, *, opened: bool) -> Notification:
    """The member read (or opened) it; the first time counts."""
    notification = await Notification.get_or_none(id=notification_id, member_id=member_id)
    if notification is None:
        raise NotFound("No notification with this id.", field="notificationId")
    now = clock.now()
    fields = []
    if notification.read_at is None:
        notification.read_at = now
        fields.append("read_at")
    if opened and notification.opened_at is None:
        notification.opened_at = now
        fields.append("opened_at")
    if fields:
        await notification.save(update_fields=fields)
    return notification


async def devices_of(member_id: uuid.UUID, limit: int = 50) -> list[Device]:
    """The member's app installs, most recently seen first (bounded: a member has a few)."""
    return await Device.filter(member_id=member_id).order_by("-last_seen_at", "-id").limit(limit)


async def device(device_id: uuid.UUID) -> Device | None:
    return await Device.get_or_none(id=device_id)


async def notification(notification_id: uuid.UUID) -> Notification | None:
    """A notification as the inbox shows it: only the ones that were sent."""
    return await Notification.get_or_none(id=notification_id, state="SENT")
