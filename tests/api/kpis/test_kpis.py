"""ProgramKpis on a data set small enough to work out by hand: the demo program (10 points
a euro, 100 welcome points, points expire 12 months after the day they were earned,
Europe/Paris, a point worth 0.005 EUR), with the clock moved from day to day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.relay import to_global_id
from domain import clock
from domain.segments import service as segments
from domain.tiers import service as tiers
from tests.conftest import OPS, enrolled, error_codes, purchase

PARIS = ZoneInfo("Europe/Paris")
FIELDS = (
    "activeMembers newMembers retentionRate repeatPurchaseRate averageOrderValue customerLifetimeValue "
    "redemptionRate pointsIssued pointsRedeemed pointsExpired pointsLiability"
)
WITH_VALUE = (
    f"query($from: Date!, $to: Date!, $tierId: ID) {{ programKpis(from: $from, to: $to, tierId: $tierId) {{ {FIELDS} "
    "pointsLiabilityValue { amount currency } currency } }"
)
WITH_VALUE_IN_SEGMENT = (
    "query($from: Date!, $to: Date!, $tierId: ID, $segmentKey: String) { programKpis(from: $from, to: $to, "
    f"tierId: $tierId, segmentKey: $segmentKey) {{ {FIELDS} pointsLiabilityValue {{ amount currency }} currency }} }}"
)


async def test_every_figure_is_the_one_worked_out_by_hand(app, gql, tokens):
    day0 = clock.now().astimezone(PARIS).date() + timedelta(days=2)

    def day(n: int) -> date:
        return day0 + timedelta(days=n)

    def on(n: int) -> None:  # noon, Paris time, on day n
        target = datetime.combine(day(n), time(12), PARIS)
        clock.advance(target - clock.now())

    async def kpis(first: int, last: int, tier: str | None = None) -> dict:
        variables = {"from": day(first).isoformat(), "to": day(last).isoformat()}
        if tier:
            variables["tierId"] = to_global_id("Tier", tier)
        result = await gql(WITH_VALUE, variables, token=tokens.marketer())
        assert "errors" not in result, result
        return result["data"]["programKpis"]

    # Day 0: Old joins (100) and buys 20.00 (200): 300 points that expire a year later.
    on(0)
    old = await enrolled(gql, tokens, "old@example.com")
    await purchase(gql, tokens, old, "OLD-1", "20.00")
    # The previous period, days 350-359: A and B join and buy.
    on(351)
    a = await enrolled(gql, tokens, "a@example.com")  # +100
    on(352)
    await purchase(gql, tokens, a, "A-1", "30.00")  # +300
    on(355)
    b = await enrolled(gql, tokens, "b@example.com")  # +100
    on(356)
    await purchase(gql, tokens, b, "B-1", "10.00")  # +100
    # The period, days 360-369.
    on(361)
    await purchase(gql, tokens, a, "A-2", "40.00")  # +400
    c = await enrolled(gql, tokens, "c@example.com")  # +100, new
    on(362)
    await purchase(gql, tokens, c, "C-1", "50.00")  # +500
    d = await enrolled(gql, tokens, "d@example.com")  # +100, new, never buys
    on(363)
    await purchase(gql, tokens, a, "A-3", "20.00")  # +200
    on(364)
    refunded = await gql(OPS["RefundPurchase"], {"externalId": "A-3", "amount": "20.00"}, token=tokens.staff())
    assert refunded["data"]["refundPurchase"]["userErrors"] == []  # -200 taken back
    created = await gql(OPS["CreateReward"], {"name": "Cake", "pointsCost": 300}, token=tokens.marketer())
    reward = created["data"]["createReward"]["reward"]["id"]
    on(366)
    redeemed = await gql(
        OPS["RedeemReward"], {"rewardId": reward, "idempotencyKey": "cake-1"}, token=tokens.member(c.uuid)
    )
    assert redeemed["data"]["redeemReward"]["userErrors"] == []  # C spends 300
    on(368)
    run = await tiers.run_expiry(app.state.services.program)
    assert run.expired == 300  # Old's year-old points
    on(370)

    now = await kpis(360, 369)
    assert now == {
        "activeMembers": 2,  # A, C
        "newMembers": 2,  # C, D
        "retentionRate": 0.5,  # of A and B (active before), A
        "repeatPurchaseRate": 0.5,  # of A and C, A bought twice (the refunded purchase counts)
        "averageOrderValue": "30.00",  # (40 + (20 - 20 refunded) + 50) / 3
        "customerLifetimeValue": "90.00",  # 90 / 2 active = 45 a period, x 1 / (1 - 0.5)
        "redemptionRate": 0.2727,  # 300 / 1100
        "pointsIssued": 1100,  # 100 (C) + 100 (D) + 400 + 200 + 500 - 200 refunded
        "pointsRedeemed": 300,
        "pointsExpired": 300,
        "pointsLiability": 1400,  # Old 0, A 800, B 200, C 300, D 100
        "pointsLiabilityValue": {"amount": "7.00", "currency": "EUR"},  # 1400 x 0.005
        "currency": "EUR",
    }
    before = await kpis(350, 359)
    assert {k: before[k] for k in before if k not in ("pointsLiability", "pointsLiabilityValue", "currency")} == {
        "activeMembers": 2,  # A, B
        "newMembers": 2,  # A, B
        "retentionRate": None,  # nobody bought in days 340-349: nothing to divide by
        "repeatPurchaseRate": 0.0,
        "averageOrderValue": "20.00",  # (30 + 10) / 2
        "customerLifetimeValue": "20.00",  # 40 / 2, one period (retention unknown)
        "redemptionRate": 0.0,
        "pointsIssued": 600,  # 100 + 300 + 100 + 100
        "pointsRedeemed": 0,
        "pointsExpired": 0,
    }
    # Everyone holds the entry tier: its KPIs are the program's; the next tier has nobody.
    assert await kpis(360, 369, "bronze") == now
    silver = await kpis(360, 369, "silver")
    assert (silver["activeMembers"], silver["pointsIssued"], silver["pointsLiability"]) == (0, 0, 0)
    assert (silver["averageOrderValue"], silver["retentionRate"]) == (None, None)
    assert d.uuid and old.uuid  # enrolled as written above


async def test_the_contract_document_as_written(gql, tokens):
    result = await gql(OPS["ProgramKpis"], {"from": "2026-01-01", "to": "2026-12-31"}, token=tokens.marketer())
    assert result["data"]["programKpis"]["activeMembers"] == 0
    assert result["data"]["programKpis"]["redemptionRate"] is None


async def test_a_period_that_ends_before_it_starts_or_an_unknown_tier_is_refused(gql, tokens):
    backwards = await gql(OPS["ProgramKpis"], {"from": "2026-02-01", "to": "2026-01-31"}, token=tokens.marketer())
    assert error_codes(backwards) == ["INVALID_INPUT"]
    unknown = await gql(
        WITH_VALUE,
        {"from": "2026-01-01", "to": "2026-01-31", "tierId": to_global_id("Tier", "platinum")},
        token=tokens.marketer(),
    )
    assert error_codes(unknown) == ["INVALID_INPUT"]


async def test_members_and_the_till_may_not_read_the_kpis(gql, tokens):
    member = await enrolled(gql, tokens, "m@example.com")
    for token in (member.token, tokens.staff()):
        result = await gql(OPS["ProgramKpis"], {"from": "2026-01-01", "to": "2026-12-31"}, token=token)
        assert error_codes(result) == ["FORBIDDEN"]
        assert result["data"] is None


async def test_the_kpis_of_a_segment_are_those_of_its_members_worked_out_by_hand(app, gql, tokens):
    noon = datetime.combine(clock.now().astimezone(PARIS).date() + timedelta(days=2), time(12), PARIS)
    clock.advance(noon - clock.now())
    today = noon.date().isoformat()
    ana = await enrolled(gql, tokens, "ana@example.com")  # +100
    await purchase(gql, tokens, ana, "A-1", "30.00")  # +300
    await purchase(gql, tokens, ana, "A-2", "10.00")  # +100: two purchases, occasional
    bob = await enrolled(gql, tokens, "bob@example.com")  # +100
    await purchase(gql, tokens, bob, "B-1", "50.00")  # +500: one purchase, still new
    await enrolled(gql, tokens, "cy@example.com")  # +100, new, never buys
    await segments.recompute(app.state.services.program)  # the worker's run: Cy had no purchase to recompute her

    async def kpis(**more) -> dict:
        result = await gql(WITH_VALUE_IN_SEGMENT, {"from": today, "to": today, **more}, token=tokens.marketer())
        assert "errors" not in result, result
        return result["data"]["programKpis"]

    occasional = await kpis(segmentKey="occasional")
    assert occasional == {
        "activeMembers": 1,  # Ana
        "newMembers": 1,  # Ana joined today
        "retentionRate": None,  # nobody bought the day before
        "repeatPurchaseRate": 1.0,  # Ana bought twice
        "averageOrderValue": "20.00",  # (30 + 10) / 2
        "customerLifetimeValue": "40.00",  # 40 / 1 active, one period (retention unknown)
        "redemptionRate": 0.0,
        "pointsIssued": 500,  # 100 + 300 + 100
        "pointsRedeemed": 0,
        "pointsExpired": 0,
        "pointsLiability": 500,
        "pointsLiabilityValue": {"amount": "2.50", "currency": "EUR"},  # 500 x 0.005
        "currency": "EUR",
    }
    new = await kpis(segmentKey="new")
    assert {k: new[k] for k in ("activeMembers", "newMembers", "repeatPurchaseRate", "averageOrderValue")} == {
        "activeMembers": 1,  # Bob; Cy never bought
        "newMembers": 2,  # Bob, Cy
        "repeatPurchaseRate": 0.0,
        "averageOrderValue": "50.00",
    }
    assert (new["pointsIssued"], new["pointsLiability"]) == (700, 700)  # Bob 600, Cy 100
    # With a tier too: the members in both. Everyone holds bronze; nobody silver.
    assert await kpis(segmentKey="new", tierId=to_global_id("Tier", "bronze")) == new
    silver_new = await kpis(segmentKey="new", tierId=to_global_id("Tier", "silver"))
    assert (silver_new["activeMembers"], silver_new["newMembers"], silver_new["pointsLiability"]) == (0, 0, 0)
    # A segment with nobody in it: zeros, not the program's figures.
    assert (await kpis(segmentKey="at_risk"))["pointsLiability"] == 0
    unknown = await gql(
        WITH_VALUE_IN_SEGMENT, {"from": today, "to": today, "segmentKey": "vip"}, token=tokens.marketer()
    )
    assert error_codes(unknown) == ["NOT_FOUND"]
