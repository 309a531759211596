"""Campaigns: a push to an audience, once, with A/B variants and a holdout.

create → schedule (an absolute time, or a wall-clock time read in each member's zone) →
`start_due` (run by any worker: picks the recipients, the holdout and the variants, and
queues the notifications, in one transaction) → the push dispatcher sends them under
its policy → `record_outcomes` (the dispatcher, as it records them) → `stats`."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from domain import clock, text
from domain.audit import service as audit
from domain.campaigns import repository
from domain.campaigns.errors import AlreadyStarted
from domain.campaigns.repository import CampaignRow, NewRecipient
from domain.errors import Expired, InvalidInput, NotEligible, NotFound
from domain.members import service as members
from domain.members.service import AudienceMember
from domain.notifications import service as notifications
from domain.offers import service as offers
from domain.program.config import Program
from domain.purchases import service as purchases
from domain.segments import service as segments

KIND = "CAMPAIGN"
TEST_KIND = "CAMPAIGN_TEST"  # a marketer's test send, to one named device
TEST_PREFIX = "[Test] "
TESTABLE = ("DRAFT", "SCHEDULED", "PAUSED")
# The segments every program has (the contract); resolved by the segments area.
MAX_AUDIENCE_IDS = 10_000
MAX_VARIANTS = 5
VARIANT_KEY = re.compile(r"^[A-Za-z0-9_-]{1,20}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
# Local-time campaigns start when the first zone reaches the hour (UTC+14, Kiribati).
EARLIEST_OFFSET = timezone(timedelta(hours=14))
# How far ahead a campaign may be scheduled.
HORIZON = timedelta(days=366)


@dataclass(frozen=True)
class Audience:
    segment_keys: tuple[str, ...] = ()
    tier_ids: tuple[str, ...] = ()  # tier keys
    member_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class Text:
    title: str
    body: str


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    deep_link: str | None = None
    locales: dict[str, Text] = field(default_factory=dict)  # locale → text; the rest get title/body


@dataclass(frozen=True)
class Variant:
    key: str
    weight: int
    message: Message


# -- creating and scheduling ----------------------------------------------------------


def _message(m: Message, prefix: str) -> dict:
    title = text.name(m.title, f"{prefix}.title", max_length=120, what="A title")
    body = text.checked(m.body, f"{prefix}.body").strip()
    if not 1 <= len(body) <= 500:
        raise InvalidInput("A body has 1 to 500 characters.", field=f"{prefix}.body")
    link = None
    if m.deep_link is not None:
        link = text.checked(m.deep_link, f"{prefix}.deepLink").strip()
        if not 1 <= len(link) <= 500 or " " in link or ":" not in link:
            raise InvalidInput("A deep link is a URL or an app link (scheme:…), at most 500 characters.",
                               field=f"{prefix}.deepLink")  # fmt: skip
    locales = {}
    for locale, t in m.locales.items():
        if not LOCALE.match(locale) or len(locale) > 35:
            raise InvalidInput("Use a BCP 47 language tag such as en or fr-CA.", field=f"{prefix}.locales")
        if locale.lower() in locales:
            raise InvalidInput(f"The locale {locale} is given twice.", field=f"{prefix}.locales")
        texts = _message(Message(t.title, t.body), f"{prefix}.locales")
        locales[locale.lower()] = {"title": texts["title"], "body": texts["body"]}
    return {"title": title, "body": body, "deep_link": link, "locales": locales}


def _audience(program: Program, audience: Audience) -> dict:
    if not (audience.segment_keys or audience.tier_ids or audience.member_ids):
        raise InvalidInput("Name at least one segment, tier or member.", field="audience")
    for key in audience.tier_ids:
        if program.tier(key) is None:
            raise InvalidInput(f"No tier {key[:32]!r} in this program.", field="audience.tierIds")
    if len(audience.member_ids) > MAX_AUDIENCE_IDS:
        raise InvalidInput(f"At most {MAX_AUDIENCE_IDS} members by id; use a segment or a tier.",
                           field="audience.memberIds")  # fmt: skip
    return {
        "segment_keys": sorted(set(audience.segment_keys)),
        "tier_keys": sorted(set(audience.tier_ids)),
        "member_ids": sorted({str(m) for m in audience.member_ids}),
    }


def _variants(message: Message | None, variants: list[Variant] | None) -> list[dict]:
    if (message is None) == (not variants):
        raise InvalidInput("Give either one message or two or more variants.", field="message")
    if message is not None:
        return [{"key": "A", "weight": 100, **_message(message, "message")}]
    if not 2 <= len(variants) <= MAX_VARIANTS:
        raise InvalidInput(f"Give 2 to {MAX_VARIANTS} variants.", field="variants")
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys) or not all(VARIANT_KEY.match(k) for k in keys):
        raise InvalidInput("Variant keys are distinct, 1 to 20 letters, digits, - or _.", field="variants")
    if not all(1 <= v.weight <= 100 for v in variants):
        raise InvalidInput("A variant's weight is between 1 and 100.", field="variants")
    return [{"key": v.key, "weight": v.weight, **_message(v.message, "variants.message")} for v in variants]


async def create(
    program: Program,
    *,
    name: str,
    audience: Audience,
    message: Message | None = None,
    variants: list[Variant] | None = None,
    offer_id: uuid.UUID | None = None,
    holdout_percent: int = 0,
    attribution_days: int = 7,
) -> CampaignRow:
    """A draft campaign: nothing is sent until it is scheduled."""
    name = text.name(name, "name", max_length=120, what="A campaign name")
    stored_audience = _audience(program, audience)
    await _known_segments(stored_audience["segment_keys"])
    stored_variants = _variants(message, variants)
    if offer_id is not None:
        offer = await offers.find(offer_id)
        if offer is None:
            raise NotFound("No offer with this id.", field="offerId")
        if offer.valid_until <= clock.now():
            raise Expired("This offer has ended.", field="offerId")
    if not 0 <= holdout_percent <= 90:
        raise InvalidInput("holdoutPercent is between 0 and 90.", field="holdoutPercent")
    if not 1 <= attribution_days <= 90:
        raise InvalidInput("attributionDays is between 1 and 90.", field="attributionDays")
    return await repository.insert(
        name=name,
        audience=stored_audience,
        variants=stored_variants,
        offer_id=offer_id,
        holdout_percent=holdout_percent,
        attribution_days=attribution_days,
        now=clock.now(),
    )


async def find(campaign_id: uuid.UUID) -> CampaignRow | None:
    return await repository.get(campaign_id)


async def _existing(campaign_id: uuid.UUID) -> CampaignRow:
    campaign = await repository.get(campaign_id)
    if campaign is None:
        raise NotFound("No campaign with this id.", field="campaignId")
    return campaign


async def _known_segments(segment_keys: list[str]) -> None:
    """Every key names a segment (a built-in or a marketer's own)."""
    unknown = sorted(set(segment_keys) - await segments.existing_keys(segment_keys))
    if unknown:
        raise InvalidInput(f"No segment {unknown[0][:32]!r}.", field="audience.segmentKeys")


def starts_at(send_at: datetime, local_time: bool) -> datetime:
    """When the first recipient is due: send_at, or its wall-clock time in the earliest zone."""
    if not local_time:
        return send_at
    return send_at.replace(tzinfo=None).replace(tzinfo=EARLIEST_OFFSET)


async def schedule(campaign_id: uuid.UUID, send_at: datetime, *, local_time: bool = False) -> CampaignRow:
    """Set (or move) the send time of a campaign that has not started. With `local_time`,
    send_at's date and time of day are read in each member's own zone (its offset is
    ignored): 10:00 is 10:00 for everyone."""
    campaign = await _existing(campaign_id)
    if send_at.tzinfo is None:
        raise InvalidInput("sendAt needs a time zone offset.", field="sendAt")
    now = clock.now()
    first = starts_at(send_at, local_time)
    # A local time must be ahead in the zone furthest west as well (UTC-12), or someone misses it.
    last = send_at.replace(tzinfo=None).replace(tzinfo=timezone(timedelta(hours=-12))) if local_time else send_at
    if last <= now:
        raise InvalidInput("sendAt is in the past.", field="sendAt")
    if first - now > HORIZON:
        raise InvalidInput("sendAt is more than a year ahead.", field="sendAt")
    done = await repository.schedule(campaign_id, send_at, local_time, max(first, now))
    if done is None:
        raise AlreadyStarted(f"This campaign is {campaign.status.lower()}: it can no longer be scheduled.",
                             field="campaignId")  # fmt: skip
    return done


async def cancel(campaign_id: uuid.UUID) -> CampaignRow:
    """Nothing is sent: works until the send starts."""
    campaign = await _existing(campaign_id)
    done = await repository.cancel(campaign_id)
    if done is None:
        raise AlreadyStarted(f"This campaign is {campaign.status.lower()}: it can no longer be cancelled.",
                             field="campaignId")  # fmt: skip
    return done


async def pause(campaign_id: uuid.UUID) -> CampaignRow:
    """Hold what is not sent yet (what a worker has in hand goes out)."""
    return await _move(campaign_id, "SENDING", "PAUSED", notifications.hold, "only a sending one can be paused")


async def resume(campaign_id: uuid.UUID) -> CampaignRow:
    """Send the rest: at once for those whose time passed while paused."""
    return await _move(campaign_id, "PAUSED", "SENDING", notifications.release, "only a paused one can be resumed")


async def _move(campaign_id: uuid.UUID, before: str, after: str, pending, refusal: str) -> CampaignRow:
    """The status change and what it does to the pending notifications, in one transaction."""
    campaign = await _existing(campaign_id)
    async with in_transaction() as conn:
        if await repository.move(conn, campaign_id, before, after) is None:
            raise AlreadyStarted(f"This campaign is {campaign.status.lower()}: {refusal}.", field="campaignId")
        await pending(await repository.pending_notifications(conn, campaign_id), conn)
        # Resumed with nothing left (the last ones went out as it paused): done.
        await repository.finish_if_answered(conn, [campaign_id], clock.now())
    return await repository.get(campaign_id)


@dataclass(frozen=True)
class Preview:
    """Who the campaign would reach if it started now."""

    audience: int  # members the audience names
    holdout: int
    without_consent: int  # outside the holdout
    without_device: int  # outside the holdout, consenting
    reachable: int  # the rest: the policy's caps and quiet hours still apply at send time


async def preview(program: Program, campaign: CampaignRow) -> Preview:
    audience = await _audience_members(program, campaign, None)
    treated = [m for m in audience if variant_for(campaign, m.id) is not None]
    consenting = [m for m in treated if m.push_marketing]
    devices = await notifications.with_devices([m.id for m in consenting]) if consenting else set()
    reachable = sum(1 for m in consenting if m.id in devices)
    return Preview(
        len(audience), len(audience) - len(treated), len(treated) - len(consenting), len(consenting) - reachable,
        reachable,
    )  # fmt: skip


@dataclass(frozen=True)
class TestSend:
    """What a test send queued for the device."""

    campaign: CampaignRow
    variant: str
    locale: str
    title: str
    body: str


async def send_test(
    campaign_id: uuid.UUID, device_id: uuid.UUID, *, variant: str | None = None, locale: str | None = None, actor: str
) -> TestSend:
    """The campaign's message (a variant's, in a language: by default the first variant,
    in the device's member's language), marked as a test, queued for that one device; the
    worker sends it on its next pass. A test is no recipient of the campaign and moves
    none of its stats, and the push policy sends it at any hour, outside the caps and not
    counting toward them (notifications.policy.EXPLICIT): it is the marketer's own
    explicit request, not the program messaging a member. Audited."""
    campaign = await _existing(campaign_id)
    if campaign.status not in TESTABLE:
        raise AlreadyStarted(f"This campaign is {campaign.status.lower()}: tests are for a draft, scheduled or "
                             "paused one.", field="campaignId")  # fmt: skip
    variants = {v["key"]: v for v in campaign.variants}
    key = campaign.variants[0]["key"] if variant is None else variant
    if key not in variants:
        raise InvalidInput(f"No such variant: this campaign's are {', '.join(variants)}.", field="variant")
    if locale is not None and (len(locale) > 35 or not LOCALE.match(locale)):
        raise InvalidInput("Use a BCP 47 language tag such as en or fr-CA.", field="locale")
    device = await notifications.device(device_id)
    member = await members.find(device.member_id) if device is not None else None
    if device is None or member is None:
        raise NotFound("No device with this id.", field="deviceId")
    if not member.push_marketing:  # the dispatcher would suppress it (NO_CONSENT): say so now
        raise NotEligible("This device's member has not agreed to marketing pushes.", field="deviceId")
    locale = locale or member.locale
    title, body = localized(variants[key], locale)
    title = (TEST_PREFIX + title)[:120]
    data = {"campaignId": str(campaign.id), "variant": key, "test": "true"}
    if variants[key]["deep_link"]:
        data["deepLink"] = variants[key]["deep_link"]
    if campaign.offer_id:
        data["offerId"] = str(campaign.offer_id)  # shown as recipients get it; a test grants nothing
    async with in_transaction() as conn:
        await notifications.enqueue(
            member.id, kind=TEST_KIND, title=title, body=body, dedupe_key=f"campaign-test:{uuid.uuid4()}",
            due_at=clock.now(), data=data, conn=conn, device_id=device.id,
        )  # fmt: skip
        details = {"deviceId": str(device.id), "variant": key, "locale": locale}
        await audit.record(conn, actor=actor, action="sendCampaignTest", subject_id=campaign.id, details=details)
    return TestSend(campaign, key, locale, title, body)


# -- sending ------------------------------------------------------------------------------


def share(campaign_id: uuid.UUID, member_id: uuid.UUID, salt: str) -> float:
    """A number in [0, 1) that is random across members but the same every time for one
    member in one campaign: the holdout and the variant survive a restart or a re-run."""
    digest = hashlib.sha256(f"{campaign_id}:{member_id}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def variant_for(campaign: CampaignRow, member_id: uuid.UUID) -> str | None:
    """None for the holdout; otherwise the variant, in proportion to the weights."""
    if share(campaign.id, member_id, "holdout") * 100 < campaign.holdout_percent:
        return None
    point = share(campaign.id, member_id, "variant") * sum(v["weight"] for v in campaign.variants)
    for v in campaign.variants:
        point -= v["weight"]
        if point < 0:
            return v["key"]
    return campaign.variants[-1]["key"]


def localized(variant: dict, locale: str) -> tuple[str, str]:
    """The member's language (fr-CA, then fr), else the fallback text."""
    locale = locale.lower()
    texts = variant["locales"]
    chosen = texts.get(locale) or texts.get(locale.split("-")[0])
    return (chosen["title"], chosen["body"]) if chosen else (variant["title"], variant["body"])


def planned_at(campaign: CampaignRow, member: AudienceMember) -> datetime:
    if not campaign.local_time:
        return campaign.send_at
    return campaign.send_at.replace(tzinfo=None).replace(tzinfo=ZoneInfo(member.timezone))


@dataclass(frozen=True)
class Started:
    campaign_id: uuid.UUID
    recipients: int
    holdout: int
    queued: int


async def _audience_members(
    program: Program, campaign: CampaignRow, conn: BaseDBAsyncClient | None
) -> list[AudienceMember]:
    member_ids = [uuid.UUID(m) for m in campaign.audience["member_ids"]]
    # the segments as their last recomputation left them (hourly, and at each purchase)
    member_ids += await segments.members_of(campaign.audience["segment_keys"], conn)
    tier_keys = list(campaign.audience["tier_keys"])
    if program.entry_tier.key in tier_keys:
        tier_keys.append("")  # a member never moved holds the entry tier
    return await members.audience(member_ids, tier_keys, conn)


async def start_due(program: Program, now: datetime | None = None) -> list[Started]:
    """Start every campaign whose time has come: the audience as it is now, the holdout
    and the variants, one recipient row and one queued notification each, all in one
    transaction per campaign. Any number of workers may run this at once: each campaign
    is locked by the one that starts it, and a worker that dies mid-way commits nothing."""
    started = []
    while True:
        now_ = now or clock.now()
        async with in_transaction() as conn:
            campaign = await repository.claim_due(conn, now_)
            if campaign is None:
                return started
            started.append(await _start(program, conn, campaign, now_))


async def _start(program: Program, conn: BaseDBAsyncClient, campaign: CampaignRow, now: datetime) -> Started:
    audience = await _audience_members(program, campaign, conn)
    variants = {v["key"]: v for v in campaign.variants}
    recipients: list[NewRecipient] = []
    queue: list[notifications.Queue] = []
    for member in audience:
        key = variant_for(campaign, member.id)
        due = planned_at(campaign, member)
        if key is None:
            recipients.append(NewRecipient(uuid.uuid4(), member.id, None, None, "HOLDOUT", due))
            continue
        variant = variants[key]
        title, body = localized(variant, member.locale)
        notification_id = uuid.uuid4()
        data = {"campaignId": str(campaign.id), "variant": key}
        if variant["deep_link"]:
            data["deepLink"] = variant["deep_link"]
        if campaign.offer_id:
            data["offerId"] = str(campaign.offer_id)
        recipients.append(NewRecipient(uuid.uuid4(), member.id, key, notification_id, "PENDING", due))
        dedupe_key = f"campaign:{campaign.id}:{member.id}"
        queue.append(notifications.Queue(notification_id, member.id, title, body, dedupe_key, due, data))
    await repository.insert_recipients(conn, campaign.id, recipients)
    queued = await notifications.enqueue_many(KIND, queue, conn)
    await repository.mark_started(conn, campaign.id, now, finished=not queue)
    return Started(campaign.id, len(recipients), len(recipients) - len(queue), queued)


@dataclass(frozen=True)
class Outcome:
    """What the dispatcher recorded for a campaign's notification."""

    notification_id: uuid.UUID
    outcome: str  # SENT | FAILED | SUPPRESSED
    reason: str | None
    sent_at: datetime | None


async def record_outcomes(conn: BaseDBAsyncClient, outcomes: list[Outcome]) -> int:
    """Called by the dispatcher inside the transaction that records the sends."""
    if not outcomes:
        return 0
    now = clock.now()
    recorded = await repository.record_outcomes(
        conn,
        [o.notification_id for o in outcomes],
        [o.outcome for o in outcomes],
        [o.reason for o in outcomes],
        [o.sent_at for o in outcomes],
        now,
    )
    # The campaign's offer goes to those it was sent to, in the same transaction.
    sent: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for r in recorded:
        if r.outcome == "SENT":
            sent[r.campaign_id].append(r.member_id)
    for campaign_id, offer_id in (await repository.offers_of(conn, list(sent))).items() if sent else ():
        await offers.grant(conn, offer_id, sent[campaign_id], now)
    return len(recorded)


# -- stats --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Uplift:
    """Conversion of everyone assigned to the variant (sent or not) against the holdout,
    with a 95% confidence interval of the difference (normal approximation)."""

    rate: float
    holdout_rate: float
    difference: float
    low: float
    high: float


@dataclass(frozen=True)
class Counts:
    targeted: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    pending: int = 0
    opened: int = 0
    converted: int = 0
    suppressed_by_reason: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class VariantStats:
    key: str
    counts: Counts
    uplift: Uplift | None


@dataclass(frozen=True)
class Stats:
    counts: Counts
    holdout: int
    holdout_converted: int
    variants: tuple[VariantStats, ...]


def _counts(rows: list[repository.RecipientRow], opened: set, converted: set) -> Counts:
    outcomes = Counter(r.outcome for r in rows)
    reasons = Counter((r.reason or "").split(":")[0] for r in rows if r.outcome == "SUPPRESSED")
    sent = [r for r in rows if r.outcome == "SENT"]
    return Counts(
        targeted=len(rows),
        sent=outcomes["SENT"],
        failed=outcomes["FAILED"],
        suppressed=outcomes["SUPPRESSED"],
        pending=outcomes["PENDING"],
        opened=sum(1 for r in sent if r.notification_id in opened),
        converted=sum(1 for r in sent if r.member_id in converted),
        suppressed_by_reason=tuple(sorted(reasons.items())),
    )


def uplift(converted: int, n: int, holdout_converted: int, holdout: int) -> Uplift | None:
    if not n or not holdout:
        return None
    p, q = converted / n, holdout_converted / holdout
    margin = 1.96 * math.sqrt(p * (1 - p) / n + q * (1 - q) / holdout)
    return Uplift(p, q, p - q, p - q - margin, p - q + margin)


async def stats(campaign: CampaignRow) -> Stats:
    """Who was targeted and what came of it, overall and per variant. A purchase (or the
    campaign's offer used) counts as a conversion within `attribution_days` of the send (for the holdout and for those
    not sent: of when it was due, so the uplift compares like with like)."""
    rows = await repository.recipients(campaign.id)
    window = timedelta(days=campaign.attribution_days)
    starts = [r.sent_at or r.planned_at for r in rows]
    ends = [s + window for s in starts]
    member_ids = [r.member_id for r in rows]
    converted = await purchases.buyers_within(member_ids, starts, ends) if rows else set()
    if campaign.offer_id is not None:  # the offer used (a coupon at the till) counts too
        converted |= await offers.used_within(campaign.offer_id, member_ids, starts, ends)
    opened = await notifications.opened_among([r.notification_id for r in rows if r.outcome == "SENT"])
    holdout = [r for r in rows if r.outcome == "HOLDOUT"]
    holdout_converted = sum(1 for r in holdout if r.member_id in converted)
    by_variant: dict[str, list] = defaultdict(list)
    for r in rows:
        if r.variant is not None:
            by_variant[r.variant].append(r)
    variants = []
    for v in campaign.variants:
        of_variant = by_variant.get(v["key"], [])
        assigned_converted = sum(1 for r in of_variant if r.member_id in converted)
        variants.append(
            VariantStats(
                v["key"],
                _counts(of_variant, opened, converted),
                uplift(assigned_converted, len(of_variant), holdout_converted, len(holdout)),
            )
        )
    targeted = [r for r in rows if r.outcome != "HOLDOUT"]
    return Stats(_counts(targeted, opened, converted), len(holdout), holdout_converted, tuple(variants))
