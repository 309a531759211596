"""Process configuration, read from LOYALTY_* environment variables (see the contract)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(Exception):
    """The process cannot start with this configuration. Its message is one line per
    mistake, each naming the variable and what is wrong with it."""


# Values never echoed back in an error message.
_SECRETS = {"jwt_secret", "database_url"}


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

    # -- limits at the edge (README, "Limits") --
    # The most a document may cost (fields, each multiplied by the page sizes above it,
    # plus the pairs of same-named fields the validator compares), per caller.
    cost_limit_anonymous: int = Field(default=500, ge=1)
    cost_limit_member: int = Field(default=5_000, ge=1)
    cost_limit_staff: int = Field(default=20_000, ge=1)
    cost_limit_marketer: int = Field(default=20_000, ge=1)
    # Rate limits in the `limits` notation ("30/minute;500/hour"), each counted per client
    # address and per token. Generous by default: a till server or a mall's NAT sends a lot.
    rate_sign_in: str = "60/minute;1000/hour"
    rate_refresh: str = "60/minute;1000/hour"
    rate_member_by_card: str = "600/minute"
    rate_record_purchase: str = "60000/minute"
    rate_report_location: str = "120/minute"
    # Every operation sent without a valid token, per client address.
    rate_anonymous: str = "600/minute"
    # Where the counters live: memory:// (this process) or a shared store for several
    # processes, e.g. redis://host:6379 (see the `limits` package's storage URIs).
    rate_storage: str = "memory://"
    # Slow clients: the request head must arrive within this, the body within that.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Connections (and WebSockets) one process holds at most; past it, new ones get 503.
    max_connections: int = Field(default=10_000, ge=1)

    # -- trusted documents (README, "Trusted documents") --
    # Manifests of the documents the apps were built with, separated by ':'.
    trusted_documents: str | None = None
    # Who must name a trusted document instead of sending text: off, members (requests
    # without a token or with a member token), all. Unset: members in production when
    # manifests are configured, otherwise off.
    trusted_only: Literal["off", "members", "all"] | None = None

    @classmethod
    def from_environment(cls) -> Settings:
        """The settings of LOYALTY_*, checked: a mistake is a ConfigurationError naming
        the variable rather than a validation traceback."""
        try:
            settings = cls()
        except ValidationError as exc:
            lines = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else ""
                shown = "" if field in _SECRETS else f"={error['input']!r}"
                lines.append(f"LOYALTY_{field.upper()}{shown}: {error['msg']}")
            raise ConfigurationError("\n".join(lines)) from None
        settings.check()
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def trusted_manifests(self) -> list[Path]:
        return [Path(p) for p in (self.trusted_documents or "").split(":") if p.strip()]

    @property
    def trusted_only_mode(self) -> str:
        if self.trusted_only is not None:
            return self.trusted_only
        return "members" if self.production and self.trusted_manifests else "off"

    def check(self) -> None:
        """Refuse configurations that cannot work, or are unsafe to serve with, before
        anything starts."""
        if self.database_url:
            scheme = urlparse(self.database_url).scheme
            if scheme not in ("postgres", "postgresql"):
                raise ConfigurationError(
                    f"LOYALTY_DATABASE_URL: must start with postgres:// or postgresql://, not {scheme or '(none)'}://"
                )
        if self.fcm_endpoint and urlparse(self.fcm_endpoint).scheme not in ("http", "https"):
            raise ConfigurationError(f"LOYALTY_FCM_ENDPOINT={self.fcm_endpoint!r}: must be an http:// or https:// URL")
        if not self.database_url or self.jwt_secret is None:
            self._check_home()
        if self.program is not None and not self.program.is_file():
            raise ConfigurationError(f"LOYALTY_PROGRAM={str(self.program)!r}: no such file")
        if self.push_backend == "firebase" and self.firebase_credentials is None:
            raise ConfigurationError(
                "LOYALTY_FIREBASE_CREDENTIALS must be set when LOYALTY_PUSH_BACKEND=firebase"
                " (the service-account JSON file that sends the pushes)"
            )
        if self.firebase_credentials is not None:
            _check_service_account(self.firebase_credentials)
        if not self.production:
            return
        if self.jwt_secret is None or len(self.jwt_secret.get_secret_value()) < 32:
            raise ConfigurationError("LOYALTY_JWT_SECRET must be set to at least 32 characters in production")
        if not self.database_url:
            raise ConfigurationError("LOYALTY_DATABASE_URL must be set in production (no embedded database)")
        if self.program is None:
            raise ConfigurationError(
                "LOYALTY_PROGRAM must be set in production: the path to your program file (the demo program is"
                " for development only)"
            )
        if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
            # The emulator mode accepts unsigned ID tokens: anyone could sign in as anyone.
            raise ConfigurationError("FIREBASE_AUTH_EMULATOR_HOST is set: refusing to run in production")

    def _check_home(self) -> None:
        """LOYALTY_HOME holds the embedded database and the development key: it must be
        a folder we can write in."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            if not os.access(self.home, os.W_OK | os.X_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise ConfigurationError(
                f"LOYALTY_HOME={str(self.home)!r}: cannot keep the embedded database and the development key there"
                f" ({exc.strerror or exc})"
            ) from None

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


def _check_service_account(path: Path) -> None:
    """The credentials file exists and is a service account's key, as firebase-admin reads it."""
    from firebase_admin import credentials

    name = f"LOYALTY_FIREBASE_CREDENTIALS={str(path)!r}"
    if not path.is_file():
        raise ConfigurationError(f"{name}: no such file")
    try:
        info = json.loads(path.read_text())
        credentials.Certificate(info)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"{name}: not a Firebase service-account JSON file ({reason})") from None
    if not info.get("project_id"):  # pushes are sent to that project's FCM
        raise ConfigurationError(f"{name}: the file has no project_id")
