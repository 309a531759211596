"""Push senders: Firebase Cloud Messaging through firebase-admin, and a log sender
for development that records and logs instead of sending."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import firebase_admin
from firebase_admin import credentials, exceptions, messaging

log = logging.getLogger("loyalty.push")

FCM_BATCH = 500  # firebase-admin's limit per send_each_async call
# Measured (bench/push): httpx's pool slows down with thousands of requests in
# flight; 100 per call, two calls at once, sent fastest.
SEND_CHUNK = 100
MIN_QUOTA_BACKOFF = 60.0


@dataclass(frozen=True)
class Push:
    token: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What FCM answered for one message, in the terms the dispatcher acts on."""

    ok: bool
    message_id: str | None = None
    code: str | None = None
    prune: bool = False  # the token is dead: remove the device
    retry_after: float | None = None  # a transient failure: try again this much later


class LogSender:
    """Development: every push is logged and kept, nothing leaves the machine."""

    def __init__(self) -> None:
        self.sent: list[Push] = []

    async def send(self, pushes: list[Push]) -> list[Outcome]:
        for push in pushes:
            log.info("push (log backend) to %s…: %s: %s", push.token[:12], push.title, push.body)
        self.sent.extend(pushes)
        return [Outcome(ok=True, message_id=f"log/{uuid.uuid4()}") for _ in pushes]

    async def close(self) -> None:
        pass


class FcmSender:
    """Sends through firebase-admin's `send_each_async`, SEND_CHUNK (at most 500)
    messages per call and `concurrency` calls at once."""

    def __init__(self, credentials_path: Path, endpoint: str | None = None, concurrency: int = 2) -> None:
        info = json.loads(Path(credentials_path).read_text())
        self._app = firebase_admin.initialize_app(
            credentials.Certificate(info),  # its token_uri is where the OAuth token comes from
            options={"projectId": info["project_id"]},
            name=f"loyalty-push-{uuid.uuid4().hex[:8]}",
        )
        self._service = messaging._get_messaging_service(self._app)
        if endpoint:  # LOYALTY_FCM_ENDPOINT replaces https://fcm.googleapis.com
            self._service._fcm_url = f"{endpoint.rstrip('/')}/v1/projects/{info['project_id']}/messages:send"
        self._gate = asyncio.Semaphore(concurrency)

    async def send(self, pushes: list[Push]) -> list[Outcome]:
        chunks = [pushes[i : i + SEND_CHUNK] for i in range(0, len(pushes), SEND_CHUNK)]
        results = await asyncio.gather(*(self._send_chunk(c) for c in chunks))
        return [o for chunk in results for o in chunk]

    async def _send_chunk(self, pushes: list[Push]) -> list[Outcome]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Message.token: what the apps register
            messages = [
                messaging.Message(token=p.token, notification=messaging.Notification(p.title, p.body), data=p.data)
                for p in pushes
            ]
        async with self._gate:
            batch = await messaging.send_each_async(messages, app=self._app)
        return [outcome_of(r) for r in batch.responses]

    async def close(self) -> None:
        await self._service._async_client.aclose()
        # delete_app runs asyncio.run() to close that client again: not on our loop.
        await asyncio.to_thread(firebase_admin.delete_app, self._app)


def outcome_of(response: messaging.SendResponse) -> Outcome:
    """FCM's answer, as Firebase documents handling it."""
    if response.success:
        return Outcome(ok=True, message_id=response.message_id)
    error = response.exception
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return Outcome(ok=False, code=type(error).__name__, prune=True)
    if isinstance(error, messaging.QuotaExceededError):
        return Outcome(ok=False, code="QUOTA_EXCEEDED", retry_after=max(MIN_QUOTA_BACKOFF, _retry_after(error)))
    if isinstance(error, exceptions.UnavailableError | exceptions.InternalError | exceptions.DeadlineExceededError):
        return Outcome(ok=False, code=getattr(error, "code", "UNAVAILABLE"), retry_after=max(5.0, _retry_after(error)))
    # INVALID_ARGUMENT about the payload and the like: this message fails, the token stays.
    return Outcome(ok=False, code=getattr(error, "code", type(error).__name__))


def _retry_after(error: Exception) -> float:
    response = getattr(error, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
