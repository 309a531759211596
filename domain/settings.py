"""Process configuration, read from LOYALTY_* environment variables (see the contract)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(Exception):
    """The process cannot start with this configuration."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    database_url: str | None = None
    jwt_secret: SecretStr | None = None
    program: Path | None = None
    env: Literal["development", "production"] = "development"
    push_backend: Literal["log", "firebase"] = "log"
    firebase_credentials: Path | None = None
    fcm_endpoint: str | None = None
    # Not in the contract's table: the Firebase project whose ID tokens we accept.
    # Unset: the credentials file's project_id.
    firebase_project_id: str | None = None
    # Where the embedded database and the development key live.
    home: Path = Path(".loyalty")
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_days: int = Field(default=60, ge=1, le=365)
    # The push dispatcher: notifications claimed per batch, and how long a claim lasts
    # before another worker may take it over (a worker that died mid-batch).
    push_batch: int = Field(default=500, ge=1, le=5000)
    push_lease_seconds: int = Field(default=120, ge=1, le=3600)
    # GET /metrics requires `Authorization: Bearer <this>` when set; production serves
    # no metrics without it.
    metrics_token: SecretStr | None = None
    # `loyalty serve` runs the worker in each API process unless --no-worker.
    serve_worker: bool = True

    @property
    def production(self) -> bool:
        return self.env == "production"

    def check(self) -> None:
        """Refuse configurations that are unsafe to serve with."""
        if not self.production:
            return
        if self.jwt_secret is None or len(self.jwt_secret.get_secret_value()) < 32:
            raise ConfigurationError("LOYALTY_JWT_SECRET must be set to at least 32 characters in production")
        if not self.database_url:
            raise ConfigurationError("LOYALTY_DATABASE_URL must be set in production (no embedded database)")
        if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
            # The emulator mode accepts unsigned ID tokens: anyone could sign in as anyone.
            raise ConfigurationError("FIREBASE_AUTH_EMULATOR_HOST is set: refusing to run in production")

    def signing_key(self) -> bytes:
        """The key for access tokens and member cards.

        In development with no LOYALTY_JWT_SECRET, a random key is kept under
        LOYALTY_HOME so that `loyalty token` and `loyalty serve` agree.
        """
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value().encode()
        if self.production:
            raise ConfigurationError("LOYALTY_JWT_SECRET is required in production")
        path = self.home / "jwt-secret"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
