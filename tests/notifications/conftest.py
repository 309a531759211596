from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
import uvicorn

from notifications.push import FcmSender
from tests.fake_fcm import FakeFcm, service_account


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
