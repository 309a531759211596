from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from api.auth import IsMarketer
from api.campaigns.types import Campaign
from api.errors import UserError
from api.relay import from_global_id, uuid_of
from domain.campaigns import service as campaigns
from domain.errors import DomainError, InvalidInput


@strawberry.input
class CampaignAudienceInput:
    segment_keys: list[str] = strawberry.field(default_factory=list, description="new, occasional, high_value, at_risk")
    tier_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    member_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.input
class LocalizedTextInput:
    locale: str = strawberry.field(description="BCP 47: fr, fr-CA (fr-CA falls back to fr, then to the message).")
    title: str
    body: str


@strawberry.input
class CampaignMessageInput:
    title: str
    body: str
    deep_link: str | None = None
    locales: list[LocalizedTextInput] = strawberry.field(
        default_factory=list, description="Texts for members of these languages; the others get title and body."
    )


@strawberry.input
class CampaignVariantInput:
    key: str = strawberry.field(description="A, B… (1 to 20 letters, digits, - or _).")
    weight: int = strawberry.field(description="Share of the audience outside the holdout, relative to the others.")
    message: CampaignMessageInput


@strawberry.input
class CreateCampaignInput:
    name: str
    audience: CampaignAudienceInput
    message: CampaignMessageInput | None = strawberry.field(default=None, description="Or `variants`.")
    variants: list[CampaignVariantInput] | None = strawberry.field(default=None, description="2 to 5: an A/B test.")
    offer_id: strawberry.ID | None = strawberry.field(default=None, description="The offer recipients get.")
    holdout_percent: int = strawberry.field(default=0, description="0 to 90: a stable random control group.")
    attribution_days: int = strawberry.field(default=7, description="A purchase this long after the push converts.")


@strawberry.input
class ScheduleCampaignInput:
    campaign_id: strawberry.ID
    send_at: datetime
    local_time: bool = strawberry.field(
        default=False, description="Read sendAt's date and time in each member's zone (10:00 for everyone)."
    )


@strawberry.input
class CancelCampaignInput:
    campaign_id: strawberry.ID


@strawberry.input
class PauseCampaignInput:
    campaign_id: strawberry.ID


@strawberry.input
class ResumeCampaignInput:
    campaign_id: strawberry.ID


@strawberry.input
class SendCampaignTestInput:
    campaign_id: strawberry.ID
    device_id: strawberry.ID = strawberry.field(description="The one device that gets the test (a Device ID).")
    variant: str | None = strawberry.field(default=None, description="A variant's key; the first one if left out.")
    locale: str | None = strawberry.field(
        default=None, description="Whose language's text (fr-CA falls back to fr, then to the message); by default "
        "that of the device's member."
    )  # fmt: skip


@strawberry.type
class CampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]


@strawberry.type(description="A test queued for one device: it goes out on the worker's next pass.")
class SendCampaignTestPayload:
    campaign: Campaign | None
    variant: str | None
    locale: str | None = strawberry.field(description="The language whose text was chosen.")
    title: str | None = strawberry.field(description="As the device shows it: [Test] and the variant's title.")
    body: str | None
    user_errors: list[UserError]


def _message(m: CampaignMessageInput) -> campaigns.Message:
    return campaigns.Message(
        title=m.title,
        body=m.body,
        deep_link=m.deep_link,
        locales={t.locale: campaigns.Text(t.title, t.body) for t in m.locales},
    )


def _tier_key(tier_id: str) -> str:
    type_name, key = from_global_id(tier_id, "audience.tierIds")
    if type_name != "Tier":
        raise InvalidInput(f"This is a {type_name} ID; a Tier ID is expected.", field="audience.tierIds")
    return key


def _audience(a: CampaignAudienceInput) -> campaigns.Audience:
    return campaigns.Audience(
        segment_keys=tuple(a.segment_keys),
        tier_ids=tuple(_tier_key(t) for t in a.tier_ids),
        member_ids=tuple(uuid_of(m, "Member", field="audience.memberIds") for m in a.member_ids),
    )


@strawberry.type
class CampaignsMutation:
    @strawberry.mutation(permission_classes=[IsMarketer], description="A draft campaign: nothing is sent yet.")
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CampaignPayload:
        try:
            row = await campaigns.create(
                info.context.services.program,
                name=input.name,
                audience=_audience(input.audience),
                message=_message(input.message) if input.message else None,
                variants=[campaigns.Variant(v.key, v.weight, _message(v.message)) for v in input.variants or []],
                offer_id=uuid_of(input.offer_id, "Offer", field="offerId") if input.offer_id else None,
                holdout_percent=input.holdout_percent,
                attribution_days=input.attribution_days,
            )
        except DomainError as exc:
            return CampaignPayload(campaign=None, user_errors=UserError.of(exc))
        return CampaignPayload(campaign=Campaign.of(row), user_errors=[])

    @strawberry.mutation(
        permission_classes=[IsMarketer], description="Send at sendAt (or at its local time in each member's zone)."
    )
    async def schedule_campaign(self, info: Info, input: ScheduleCampaignInput) -> CampaignPayload:
        try:
            row = await campaigns.schedule(
                uuid_of(input.campaign_id, "Campaign", field="campaignId"), input.send_at, local_time=input.local_time
            )
        except DomainError as exc:
            return CampaignPayload(campaign=None, user_errors=UserError.of(exc))
        return CampaignPayload(campaign=Campaign.of(row), user_errors=[])

    @strawberry.mutation(permission_classes=[IsMarketer], description="Nothing is sent; until the send starts.")
    async def cancel_campaign(self, info: Info, input: CancelCampaignInput) -> CampaignPayload:
        return await _changed(campaigns.cancel, input.campaign_id)

    @strawberry.mutation(permission_classes=[IsMarketer], description="Hold the rest of a campaign in flight.")
    async def pause_campaign(self, info: Info, input: PauseCampaignInput) -> CampaignPayload:
        return await _changed(campaigns.pause, input.campaign_id)

    @strawberry.mutation(permission_classes=[IsMarketer], description="Send the rest of a paused campaign.")
    async def resume_campaign(self, info: Info, input: ResumeCampaignInput) -> CampaignPayload:
        return await _changed(campaigns.resume, input.campaign_id)

    @strawberry.mutation(
        permission_classes=[IsMarketer],
        description="Send a draft, scheduled or paused campaign's message, marked [Test], to one device now (its "
        "member must consent to marketing pushes); no recipient, no stats, outside quiet hours and caps. Audited.",
    )
    async def send_campaign_test(self, info: Info, input: SendCampaignTestInput) -> SendCampaignTestPayload:
        try:
            sent = await campaigns.send_test(
                uuid_of(input.campaign_id, "Campaign", field="campaignId"),
                uuid_of(input.device_id, "Device", field="deviceId"),
                variant=input.variant,
                locale=input.locale,
                actor=info.context.principal().subject,
            )
        except DomainError as exc:
            return SendCampaignTestPayload(
                campaign=None, variant=None, locale=None, title=None, body=None, user_errors=UserError.of(exc)
            )
        return SendCampaignTestPayload(
            campaign=Campaign.of(sent.campaign), variant=sent.variant, locale=sent.locale, title=sent.title,
            body=sent.body, user_errors=[],
        )  # fmt: skip


async def _changed(change, campaign_id: str) -> CampaignPayload:
    try:
        row = await change(uuid_of(campaign_id, "Campaign", field="campaignId"))
    except DomainError as exc:
        return CampaignPayload(campaign=None, user_errors=UserError.of(exc))
    return CampaignPayload(campaign=Campaign.of(row), user_errors=[])
