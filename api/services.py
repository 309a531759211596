"""What a running API process holds: configuration, the program, keys, verifiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from api.documents import DocumentGate, TrustedDocuments
from api.firebase import FirebaseVerifier
from api.limits import RateLimits
from api.live import Broker
from api.tokens import VerifiedTokens
from domain.identity.tokens import TokenIssuer
from domain.program.config import Program
from domain.settings import Settings


@dataclass
class Services:
    settings: Settings
    program: Program
    tokens: TokenIssuer
    signing_key: bytes
    firebase: FirebaseVerifier
    rate_limits: RateLimits
    broker: Broker | None = None
    # The access tokens verified so far (the same token comes with every request).
    verified: VerifiedTokens = field(init=False)
    documents: DocumentGate = field(default_factory=lambda: DocumentGate(TrustedDocuments()))
    ready: bool = False
    # Why the in-process worker stopped, when it died: readiness reports it.
    worker_failure: str | None = None

    def __post_init__(self) -> None:
        self.verified = VerifiedTokens(self.tokens)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_ttl_days)

    @classmethod
    def from_settings(cls, settings: Settings, program: Program) -> Services:
        key = settings.signing_key()
        return cls(
            settings=settings,
            program=program,
            tokens=TokenIssuer(key, timedelta(seconds=settings.access_token_ttl_seconds)),
            signing_key=key,
            firebase=FirebaseVerifier(settings),
            rate_limits=RateLimits(settings),
        )
