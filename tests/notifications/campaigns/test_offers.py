"""A campaign's offer: checked when the campaign is created; clipped for each member the
campaign is sent to (not the holdout, not those the policy suppressed), whatever the
offer's own audience; its use counts as a conversion within the attribution window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tortoise import connections

from domain.campaigns import service as campaigns
from domain.errors import Expired, NotFound
from domain.offers import service as offers
from notifications import campaigns as campaign_worker
from notifications.dispatch import dispatch_due
from tests.notifications.conftest import PROGRAM, at, member

NOON = datetime(2030, 3, 12, 12, tzinfo=UTC)
MESSAGE = campaigns.Message(title="A gift", body="20% off your next visit.")


async def coupon_offer(valid_until: datetime) -> offers.OfferRow:
    return await offers.create(
        PROGRAM, title="20% off", description="On anything.", kind="DISCOUNT", value=Decimal(20),
        segment_keys=["high_value"], tier_keys=[], member_ids=[], store_keys=[], valid_from=None,
        valid_until=valid_until, usage_limit=None, actor="marketer@example.com",
    )  # fmt: skip


async def test_an_unknown_or_ended_offer_is_refused_at_creation():
    at(NOON)
    ana = await member("ana@example.com")
    audience = campaigns.Audience(member_ids=(ana,))
    missing = "2f1c1a3e-1111-4111-8111-111111111111"
    with pytest.raises(NotFound) as exc:
        await campaigns.create(PROGRAM, name="X", audience=audience, message=MESSAGE, offer_id=missing)
    assert exc.value.field == "offerId"
    ended = await coupon_offer(NOON + timedelta(hours=1))
    at(NOON + timedelta(hours=2))
    with pytest.raises(Expired):
        await campaigns.create(PROGRAM, name="X", audience=audience, message=MESSAGE, offer_id=ended.id)


async def test_recipients_sent_the_campaign_get_its_offer_and_using_it_converts(fcm, sender):
    at(NOON)
    people = {}
    for i in range(40):
        m = await member(f"o{i}@example.com", token=f"token-offer-{i:04d}", push=i % 4 != 0)
        people[m] = i % 4 != 0
    offer = await coupon_offer(NOON + timedelta(days=30))
    for m in people:  # the offer targets high_value: none of these members sees it
        assert await offers.seen_by(PROGRAM, m, offer.id) is None
    campaign = await campaigns.create(
        PROGRAM, name="Gift", audience=campaigns.Audience(member_ids=tuple(people)), message=MESSAGE,
        offer_id=offer.id, holdout_percent=20,
    )  # fmt: skip
    await campaigns.schedule(campaign.id, NOON + timedelta(hours=1))
    at(NOON + timedelta(hours=1))
    await campaign_worker.start_due(PROGRAM)
    await dispatch_due(PROGRAM, sender)

    rows = await connections.get("default").execute_query_dict(
        "SELECT member_id, outcome FROM campaign_recipients WHERE campaign_id = $1", [campaign.id]
    )
    chosen = {r["member_id"]: r["outcome"] for r in rows}
    sent = {m for m, outcome in chosen.items() if outcome == "SENT"}
    assert sent == {m for m, outcome in chosen.items() if outcome != "HOLDOUT" and people[m]}
    assert 0 < len(sent) < len(people)
    got = {m for m in people if (await offers.seen_by(PROGRAM, m, offer.id) or offer).activated}
    assert got == sent  # the holdout and the unconsented have nothing
    assert all(m["data"]["offerId"] == str(offer.id) for m in fcm.delivered)
    assert (await offers.find(offer.id)).activations == len(sent)

    # A second pass (another worker, a restart) gives nothing twice.
    await dispatch_due(PROGRAM, sender)
    assert (await offers.find(offer.id)).activations == len(sent)

    user = sorted(sent)[0]
    code = (await offers.seen_by(PROGRAM, user, offer.id)).coupon_code
    at(NOON + timedelta(days=2))
    await offers.redeem_coupon(code)  # at the till, no purchase recorded
    s = await campaigns.stats(await campaigns.find(campaign.id))
    assert s.counts.converted == 1 and s.counts.sent == len(sent)
