"""A local stand-in for Google's side of push: the OAuth token endpoint a service
account names in `token_uri`, and FCM's HTTP v1 `messages:send`. It speaks the real
protocol, so the real firebase-admin client talks to it unchanged.

Tokens steer the answer, as FCM would give it:
  unregistered-*  404 UNREGISTERED          quota-*    429 QUOTA_EXCEEDED, Retry-After: 120
  mismatch-*      403 SENDER_ID_MISMATCH    invalid-*  400 INVALID_ARGUMENT
  flaky-*         503 the first time, then accepted
"""

from __future__ import annotations

import itertools
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCESS_TOKEN = "fake-oauth-token"


def _fcm_error(status: int, state: str, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": state,
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}],
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


class FakeFcm:
    def __init__(self) -> None:
        self.delivered: list[dict] = []  # accepted messages, in order
        self.refused: list[tuple[str, str]] = []  # (token, error code)
        self.token_requests = 0
        self._ids = itertools.count(1)
        self._flaky_seen: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        self.delivered.clear()
        self.refused.clear()
        self._flaky_seen.clear()

    def to(self, token: str) -> list[dict]:
        return [m for m in self.delivered if m["token"] == token]

    async def token(self, request: Request) -> JSONResponse:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.token_requests += 1
        return JSONResponse({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"})

    async def send(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status_code=401)
        message = json.loads(await request.body())["message"]
        token = message.get("token", "")
        if token.startswith("unregistered-"):
            self.refused.append((token, "UNREGISTERED"))
            return _fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.")
        if token.startswith("mismatch-"):
            self.refused.append((token, "SENDER_ID_MISMATCH"))
            return _fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch")
        if token.startswith("quota-"):
            self.refused.append((token, "QUOTA_EXCEEDED"))
            return _fcm_error(
                429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded.", headers={"Retry-After": "120"}
            )
        if token.startswith("invalid-"):
            self.refused.append((token, "INVALID_ARGUMENT"))
            return _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if token.startswith("flaky-") and token not in self._flaky_seen:
            self._flaky_seen.add(token)
            self.refused.append((token, "UNAVAILABLE"))
            return _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
        self.delivered.append(message)
        project = request.path_params["project"]
        return JSONResponse({"name": f"projects/{project}/messages/{next(self._ids)}"})


def service_account(token_uri: str, project_id: str = "demo-loyalty") -> dict:
    """A service-account JSON with a real RSA key (google-auth signs its OAuth assertion)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "fake-key-1",
        "private_key": pem,
        "client_email": f"loyalty@{project_id}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
