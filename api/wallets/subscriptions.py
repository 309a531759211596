"""Live balances and tiers for the signed-in member, over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from api.auth import IsMember, member_id
from api.errors import ClientError
from api.relay import seq_cursor, seq_position
from api.tiers.types import TierStatus
from api.wallets.types import CashbackEntry, CashbackWallet, LedgerEntry, Wallet
from domain import clock
from domain.members import service as members
from domain.tiers import service as tiers
from domain.wallets import events

BATCH = 100
IDLE_POLL_SECONDS = 30.0  # wake up now and then to notice an expired token


@strawberry.type(description="A committed change of one of the member's wallets.")
class WalletUpdate:
    cursor: str = strawberry.field(description="Resubscribe with `after: cursor` to continue from here.")
    wallet: Wallet = strawberry.field(description="The wallet as it was right after this change.")
    entry: LedgerEntry | None = strawberry.field(
        description="The ledger entry; null when only the pending balance moved."
    )


@strawberry.type(description="A committed change of the member's cashback wallet.")
class CashbackUpdate:
    cursor: str = strawberry.field(description="Resubscribe with `after: cursor` to continue from here.")
    wallet: CashbackWallet = strawberry.field(description="The wallet as it was right after this change.")
    entry: CashbackEntry | None = strawberry.field(
        description="The ledger entry; null when only the pending balance moved."
    )


@strawberry.type(description="The member's tier changed.")
class TierChange:
    cursor: str
    tier: TierStatus


async def _follow(info: Info, kinds: tuple[str, ...], after: str | None) -> AsyncGenerator[events.Event, None]:
    """Every committed event of the member after the cursor (or from now), then live
    ones as they commit: one cursor for both, so no gap and no duplicate."""
    me = member_id(info)
    principal = info.context.principal()
    broker = info.context.services.broker
    start = seq_position(after)
    with broker.subscribe(me, kinds) as subscription:  # listening before reading: nothing slips between
        if start is None:
            # From now: the broker's first fetch after go_live brings anything committed since.
            cursor = await broker.latest(me)
        else:
            # Catch up by reading pages ourselves; then the broker feeds us.
            cursor = start
            while True:
                if _expired(principal):
                    await _close_expired(info)
                    return
                batch = await events.after(me, cursor, kinds, BATCH)
                for event in batch:
                    cursor = event.id
                    yield event
                if len(batch) < BATCH:
                    break
        broker.go_live(subscription, cursor)
        while True:
            left = (principal.expires_at - clock.now()).total_seconds()
            event = await subscription.next(min(max(left, 0), IDLE_POLL_SECONDS))
            if _expired(principal):  # checked before every delivery: nothing on an expired token
                await _close_expired(info)
                return
            if subscription.overflowed and (event is None or not subscription.pending):
                raise ClientError(
                    f'Too many updates queued for this connection: resubscribe with after: "{seq_cursor(cursor)}".',
                    code="SLOW_CONSUMER",
                )
            if event is not None:
                cursor = event.id
                yield event


async def _changes_of(info: Info, wallet_kind: str, after: str | None) -> AsyncGenerator[events.Event, None]:
    """The changes of one kind of wallet: the other kind has its own subscription."""
    async for event in _follow(info, (events.WALLET_UPDATED,), after):
        if event.wallet is not None and event.wallet.kind == wallet_kind:
            yield event


def _expired(principal) -> bool:
    return principal.expires_at <= clock.now()


async def _close_expired(info: Info) -> None:
    socket = info.context.websocket
    if socket is not None:
        await socket.close(code=4403, reason="Access token expired")


@strawberry.type
class WalletsSubscription:
    @strawberry.subscription(
        permission_classes=[IsMember],
        description="The member's points wallet changes as they commit. With `after`, first every change "
        "after that cursor, then live ones, with no gap and no duplicate.",
    )
    async def wallet_updated(self, info: Info, after: str | None = None) -> AsyncGenerator[WalletUpdate, None]:
        async for event in _changes_of(info, "POINTS", after):
            entry = event.entry
            yield WalletUpdate(
                cursor=seq_cursor(event.id),
                wallet=Wallet.of(event.wallet),
                entry=LedgerEntry.of(entry) if entry else None,
            )

    @strawberry.subscription(
        permission_classes=[IsMember],
        description="The member's cashback wallet changes as they commit; `after` as for walletUpdated.",
    )
    async def cashback_updated(self, info: Info, after: str | None = None) -> AsyncGenerator[CashbackUpdate, None]:
        program = info.context.services.program
        async for event in _changes_of(info, "CASHBACK", after):
            entry = event.entry
            yield CashbackUpdate(
                cursor=seq_cursor(event.id),
                wallet=CashbackWallet.of(program, event.wallet),
                entry=CashbackEntry.of(program, entry) if entry else None,
            )

    @strawberry.subscription(permission_classes=[IsMember], description="The member's tier changes.")
    async def tier_changed(self, info: Info, after: str | None = None) -> AsyncGenerator[TierChange, None]:
        program = info.context.services.program
        async for event in _follow(info, (events.TIER_CHANGED,), after):
            member = await members.get(event.member_id)
            status = await tiers.status_for(program, member.id, member.tier_key, clock.now())
            yield TierChange(cursor=seq_cursor(event.id), tier=TierStatus.of(status))
