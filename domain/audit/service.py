"""Who changed what, when: every marketer change (a segment, an offer, a reward) is
recorded in the change's own transaction, so there is no change without its entry."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from domain import clock
from domain.audit import repository
from domain.audit.repository import AuditRow

__all__ = ["AuditRow", "entries", "record"]


async def record(conn: BaseDBAsyncClient, *, actor: str, action: str, subject_id: object, details: dict) -> None:
    """Inside the caller's transaction: `actor` is the token's subject, `details` the input."""
    await repository.append(
        conn, actor=actor, action=action, subject_id=str(subject_id), details=details, at=clock.now()
    )


async def entries(limit: int, before_id: int | None = None) -> list[AuditRow]:
    """Newest first."""
    return await repository.newest(limit, before_id)
