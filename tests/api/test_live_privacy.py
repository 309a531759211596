"""Live updates reach only the member they belong to, while several members listen on
the same API process at once (the broker fetches their events together)."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import OPS, WELCOME, Socket, enrolled, next_update, purchase, until_live


async def listening(live_server, app, member) -> Socket:
    sock = await Socket.open(live_server, member.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, member)
    return sock


async def quiet(sock: Socket) -> None:
    """Nothing more arrives on this socket (a bounded wait: the fetch takes milliseconds)."""
    with pytest.raises(TimeoutError):
        await sock.receive(timeout=0.5)


async def test_two_members_listening_each_get_only_their_own_updates(live_server, app, gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    bo = await enrolled(gql, tokens, "bo@example.com")
    ana_sock = await listening(live_server, app, ana)
    bo_sock = await listening(live_server, app, bo)
    try:
        await purchase(gql, tokens, bo, "B-1", "9.00")  # bo earns 90
        mine = (await next_update(bo_sock))["walletUpdated"]
        assert mine["entry"]["amount"] == 90 and mine["wallet"]["balance"] == WELCOME + 90
        await quiet(ana_sock)

        await purchase(gql, tokens, ana, "A-1", "4.00")  # and the other way around
        mine = (await next_update(ana_sock))["walletUpdated"]
        assert mine["entry"]["amount"] == 40 and mine["wallet"]["balance"] == WELCOME + 40
        await quiet(bo_sock)

        # Both at once: one burst, fetched together, still sorted by member.
        await asyncio.gather(purchase(gql, tokens, ana, "A-2", "2.00"), purchase(gql, tokens, bo, "B-2", "3.00"))
        assert (await next_update(ana_sock))["walletUpdated"]["entry"]["amount"] == 20
        assert (await next_update(bo_sock))["walletUpdated"]["entry"]["amount"] == 30
        await quiet(ana_sock)
        await quiet(bo_sock)
    finally:
        await ana_sock.close()
        await bo_sock.close()
