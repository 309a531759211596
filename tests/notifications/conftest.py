from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from datetime import date, datetime

import pytest
import uvicorn
from tortoise import connections

from domain import clock
from domain.members import service as members
from domain.notifications import service as notifications
from domain.program.config import load
from notifications.push import FcmSender
from tests.fake_fcm import FakeFcm, service_account

PROGRAM = load(None)  # the demo program: birthday bonus 200, quiet hours 21-09, 2 a day


def at(when: datetime) -> None:
    """Move the clock to `when` (it runs on from there)."""
    clock.reset()
    clock.advance(when - clock.now())


async def member(
    email: str,
    *,
    tz: str = "UTC",
    birthday: date | None = None,
    push: bool = True,
    location: bool = False,
    token: str | None = None,
    program=PROGRAM,
) -> uuid.UUID:
    """A member with consents set and one registered device."""
    m = await members.enroll(program, members.Profile(email=email, timezone=tz, birthday=birthday))
    await members.update_preferences(m.id, push_marketing=push, location_nudges=location)
    await notifications.register_device(m.id, fcm_token=token or f"token-{uuid.uuid4().hex}", platform="IOS")
    return m.id


async def states(member_id) -> list[tuple[str, str, str | None]]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT kind, state, reason FROM notifications WHERE member_id = $1 ORDER BY created_at", [member_id]
    )
    return [(r["kind"], r["state"], r["reason"]) for r in rows]


@pytest.fixture(scope="session")
async def fcm_server(tmp_path_factory):
    """The fake FCM in a thread of its own: google-auth fetches OAuth tokens with a
    blocking call, which would stall a server sharing the test's event loop."""
    fake = FakeFcm()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        await asyncio.sleep(0.01)
    path = tmp_path_factory.mktemp("firebase") / "service-account.json"
    path.write_text(json.dumps(service_account(f"http://127.0.0.1:{port}/token")))
    fake.endpoint = f"http://127.0.0.1:{port}"
    fake.credentials = path
    yield fake
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def fcm(fcm_server):
    fcm_server.reset()
    yield fcm_server


@pytest.fixture
async def sender(fcm):
    """The real firebase-admin client, pointed at the fake FCM (LOYALTY_FCM_ENDPOINT)."""
    s = FcmSender(fcm.credentials, endpoint=fcm.endpoint)
    yield s
    await s.close()
