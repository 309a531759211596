"""A draw's winner push is transactional (DRAW_WON): the member entered, so it reaches a
winner who refused marketing pushes, outside the marketing caps, and waits out the quiet
hours like any push. Through the real firebase-admin client against the local fake FCM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise import connections

from domain import clock
from domain.draws import service as draws
from domain.notifications import service as notifications
from notifications.dispatch import dispatch_due
from tests.notifications.conftest import PROGRAM, at, member, states


async def marketing(member_id, key: str) -> None:
    """A marketing push due now (its kind needs pushMarketing and counts toward the caps)."""
    await notifications.enqueue(
        member_id, kind="BIRTHDAY", title="Hello", body="A marketing push.", dedupe_key=key, due_at=clock.now()
    )


async def test_a_winner_without_marketing_consent_gets_the_prize_push_and_the_coupon(fcm, sender):
    at(datetime(2030, 6, 1, 10, 0, tzinfo=UTC))  # demo program: quiet 21:00-09:00, 2 pushes a day
    shy = await member("shy@example.com", push=False, token="token-shy")
    busy = await member("busy@example.com", push=True, token="token-busy")
    draw = await draws.create(
        prize="Espresso machine",
        winners=2,
        entry_cost=10,
        max_entries_per_member=1,
        closes_at=datetime(2030, 6, 1, 21, 30, tzinfo=UTC),
        by="mia",
    )
    for m in (shy, busy):
        await draws.enter(member_id=m, draw_id=draw.id, idempotency_key="enter")
    await marketing(busy, "before-the-draw")
    await marketing(shy, "refused")
    assert (await dispatch_due(PROGRAM, sender)).sent == 1  # busy's; shy said no to marketing

    at(datetime(2030, 6, 1, 22, 0, tzinfo=UTC))  # closed, in the quiet hours
    assert await draws.draw_due(PROGRAM) == 1
    result = await dispatch_due(PROGRAM, sender)
    assert (result.sent, result.deferred) == (0, 2)  # both winners' pushes wait for the morning

    at(datetime(2030, 6, 2, 9, 0, tzinfo=UTC))
    assert (await dispatch_due(PROGRAM, sender)).sent == 2
    coupons = await connections.get("default").execute_query_dict(
        "SELECT c.id, c.code, c.member_id FROM coupons c JOIN draw_entries e ON e.coupon_id = c.id"
        " WHERE e.draw_id = $1 AND e.won",
        [draw.id],
    )
    by_member = {c["member_id"]: c for c in coupons}
    assert set(by_member) == {shy, busy}
    (push,) = fcm.to("token-shy")
    assert push["notification"]["title"] == "You won!"
    assert by_member[shy]["code"] in push["notification"]["body"]
    assert (push["data"]["kind"], push["data"]["couponId"]) == ("DRAW_WON", str(by_member[shy]["id"]))
    assert await states(shy) == [
        ("BIRTHDAY", "SUPPRESSED", "NO_CONSENT: push_marketing is off"),
        ("DRAW_WON", "SENT", None),
    ]

    # The win used none of busy's marketing budget: two more today, the cap stops the third.
    for key in ("after-1", "after-2", "after-3"):
        await marketing(busy, key)
    at(datetime(2030, 6, 2, 9, 0, tzinfo=UTC) + timedelta(minutes=1))
    result = await dispatch_due(PROGRAM, sender)
    assert (result.sent, result.suppressed) == (2, 1)
    assert [s for s in await states(busy) if s[0] == "DRAW_WON"] == [("DRAW_WON", "SENT", None)]
    assert len(fcm.to("token-busy")) == 4  # before the draw, the win, two after
