"""An access token is verified once and then remembered (api/tokens.py): a remembered
token must be refused exactly when a fresh check would refuse it."""

from __future__ import annotations

from datetime import timedelta

from domain import clock
from domain.identity.tokens import Role
from tests.conftest import enrolled

ME = "{ me { email } }"


def _refusal(result: dict) -> tuple[str, str]:
    error = result["errors"][0]
    return error["extensions"]["code"], error["message"]


async def test_a_remembered_token_is_refused_once_it_expires(gql, tokens, issuer):
    ana = await enrolled(gql, tokens, "ana@example.com")
    token, _ = issuer.mint(Role.MEMBER, str(ana.uuid), ttl=timedelta(minutes=5))
    for _ in range(2):  # the second answer comes from the remembered check
        assert (await gql(ME, token=token))["data"]["me"]["email"] == "ana@example.com"

    clock.advance(timedelta(minutes=5))
    code, message = _refusal(await gql(ME, token=token))
    assert code == "UNAUTHENTICATED"
    assert "expired" in message


async def test_a_token_remembered_later_is_checked_afresh_when_the_clock_reads_earlier(gql, tokens, issuer):
    ana = await enrolled(gql, tokens, "ana@example.com")
    clock.advance(timedelta(hours=2))
    token, _ = issuer.mint(Role.MEMBER, str(ana.uuid), ttl=timedelta(hours=4))
    assert (await gql(ME, token=token))["data"]["me"]["email"] == "ana@example.com"

    clock.reset()  # two hours earlier: the token is issued in the future again
    code, message = _refusal(await gql(ME, token=token))
    assert code == "UNAUTHENTICATED"
    assert "issued in the future" in message


async def test_a_token_with_a_bad_signature_is_refused_every_time(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    forged = ana.token[:-4] + ("AAAA" if not ana.token.endswith("AAAA") else "BBBB")
    assert (await gql(ME, token=ana.token))["data"]["me"]["email"] == "ana@example.com"
    for _ in range(2):
        code, _ = _refusal(await gql(ME, token=forged))
        assert code == "UNAUTHENTICATED"
