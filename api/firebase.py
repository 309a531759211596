"""Firebase ID-token verification (firebase-admin's `auth.verify_id_token`).

With FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts the Auth emulator's
unsigned tokens; the tests sign in that way, and production refuses to start with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid

import firebase_admin
from firebase_admin import auth, credentials

from domain import clock
from domain.errors import InvalidCredentials
from domain.identity.sessions import FirebaseIdentity
from domain.settings import Settings

log = logging.getLogger("loyalty.api")


class FirebaseNotConfigured(InvalidCredentials):
    """No project to check ID tokens against: no token can be accepted (UNAUTHENTICATED)."""


class FirebaseVerifier:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: firebase_admin.App | None = None

    def project_id(self) -> str | None:
        if self._settings.firebase_project_id:
            return self._settings.firebase_project_id
        path = self._settings.firebase_credentials
        if path is not None:
            return json.loads(path.read_text()).get("project_id")
        return os.environ.get("GOOGLE_CLOUD_PROJECT")

    def app(self) -> firebase_admin.App:
        if self._app is None:
            project_id = self.project_id()
            if not project_id:
                log.warning("Firebase sign-in needs LOYALTY_FIREBASE_PROJECT_ID or LOYALTY_FIREBASE_CREDENTIALS")
                raise FirebaseNotConfigured("Sign-in with Firebase is not set up on this server.")
            path = self._settings.firebase_credentials
            credential = credentials.Certificate(str(path)) if path else None
            self._app = firebase_admin.initialize_app(
                credential,
                options={"projectId": project_id},
                name=f"loyalty-auth-{uuid.uuid4().hex[:8]}",
            )
        return self._app

    async def verify(self, id_token: str) -> FirebaseIdentity:
        if len(id_token) > 8192:
            raise InvalidCredentials("This is not a Firebase ID token.")
        app = self.app()
        try:
            # Blocking: it may fetch Google's public keys (cached afterwards).
            claims = await asyncio.to_thread(auth.verify_id_token, id_token, app)
        except (
            auth.InvalidIdTokenError,
            auth.ExpiredIdTokenError,
            auth.RevokedIdTokenError,
            auth.UserDisabledError,
            ValueError,
        ) as exc:
            raise InvalidCredentials(f"The Firebase ID token was refused: {exc}") from None
        # firebase-admin skips the expiry check for the emulator's tokens; we do not.
        if float(claims.get("exp", 0)) <= clock.now().timestamp():
            raise InvalidCredentials("The Firebase ID token has expired.")
        return FirebaseIdentity(
            uid=claims["uid"],
            email=claims.get("email"),
            email_verified=bool(claims.get("email_verified")),
            name=claims.get("name"),
        )

    def close(self) -> None:
        if self._app is not None:
            firebase_admin.delete_app(self._app)
            self._app = None
