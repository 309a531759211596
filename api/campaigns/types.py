from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from api.relay import Node, to_global_id
from domain.campaigns import service as campaigns
from domain.campaigns.repository import CampaignRow


@strawberry.enum
class CampaignStatus(Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    PAUSED = "PAUSED"
    SENT = "SENT"
    CANCELLED = "CANCELLED"


@strawberry.type(description="How many recipients the policy held back for one reason (NO_CONSENT, DAILY_CAP…).")
class SuppressedCount:
    reason: str
    count: int


@strawberry.type(description="Conversion against the holdout, with a 95% confidence interval of the difference.")
class Uplift:
    conversion_rate: float = strawberry.field(description="Of everyone assigned to the variant, sent or not.")
    holdout_conversion_rate: float
    difference: float
    low: float
    high: float


def _uplift(u: campaigns.Uplift | None) -> Uplift | None:
    return Uplift(
        conversion_rate=u.rate, holdout_conversion_rate=u.holdout_rate, difference=u.difference, low=u.low, high=u.high
    ) if u else None  # fmt: skip


@strawberry.type
class Counts:
    """What CampaignStats and VariantStats both count."""

    targeted: int = strawberry.field(description="Outside the holdout: sent + failed + suppressed + pending.")
    sent: int
    failed: int
    suppressed: int
    pending: int = strawberry.field(description="Queued, not answered yet (later in their time zone, quiet hours).")
    opened: int = strawberry.field(description="Sent and opened in the app (markNotification with opened).")
    converted: int = strawberry.field(description="Sent, and bought within the attribution window.")
    suppressed_by_reason: list[SuppressedCount]


@strawberry.type(description="What a campaign reached and earned.")
class CampaignStats(Counts):
    holdout: int = strawberry.field(description="The control group: sent nothing.")
    holdout_converted: int
    variants: list[VariantStats]

    @classmethod
    def of(cls, s: campaigns.Stats) -> CampaignStats:
        return cls(
            **_counts(s.counts),
            holdout=s.holdout,
            holdout_converted=s.holdout_converted,
            variants=[VariantStats(variant=v.key, **_counts(v.counts), uplift=_uplift(v.uplift)) for v in s.variants],
        )


@strawberry.type(description="One variant's share of a campaign's stats.")
class VariantStats(Counts):
    variant: str
    uplift: Uplift | None = strawberry.field(description="Null without a holdout.")


def _counts(c: campaigns.Counts) -> dict:
    return {
        "targeted": c.targeted,
        "sent": c.sent,
        "failed": c.failed,
        "suppressed": c.suppressed,
        "pending": c.pending,
        "opened": c.opened,
        "converted": c.converted,
        "suppressed_by_reason": [SuppressedCount(reason=r, count=n) for r, n in c.suppressed_by_reason],
    }


@strawberry.type(description="Who a campaign would reach if it started now.")
class AudiencePreview:
    audience: int = strawberry.field(description="Members the audience names.")
    holdout: int
    without_consent: int = strawberry.field(description="Outside the holdout, without pushMarketing.")
    without_device: int = strawberry.field(description="Outside the holdout, consenting, without an app install.")
    reachable: int = strawberry.field(description="The rest (caps and quiet hours still apply when sending).")


@strawberry.type(description="A push to an audience, once: at a time, or at a local hour in each member's zone.")
class Campaign(Node):
    name: str
    status: CampaignStatus
    send_at: datetime | None
    local_time: bool = strawberry.field(description="sendAt's date and time are read in each member's zone.")
    holdout_percent: int
    attribution_days: int
    variants: list[str] = strawberry.field(description="The variants' keys (one message: A).")
    created_at: datetime
    row: strawberry.Private[CampaignRow]

    @classmethod
    def of(cls, row: CampaignRow) -> Campaign:
        return cls(
            id=to_global_id("Campaign", row.id),
            name=row.name,
            status=CampaignStatus(row.status),
            send_at=row.send_at,
            local_time=row.local_time,
            holdout_percent=row.holdout_percent,
            attribution_days=row.attribution_days,
            variants=[v["key"] for v in row.variants],
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field(description="Audience size after the holdout and consent, before scheduling.")
    async def audience_preview(self, info: Info) -> AudiencePreview:
        p = await campaigns.preview(info.context.services.program, self.row)
        return AudiencePreview(
            audience=p.audience,
            holdout=p.holdout,
            without_consent=p.without_consent,
            without_device=p.without_device,
            reachable=p.reachable,
        )

    @strawberry.field(description="Targeted, sent, failed, suppressed, opened, converted; per variant, with uplift.")
    async def stats(self, info: Info) -> CampaignStats:
        return CampaignStats.of(await campaigns.stats(self.row))
