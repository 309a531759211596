"""What generated clients rely on: points are JSON integers, money is Money with its
currency, userErrors.code is an enum, and every top-level error carries extensions.code."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from graphql import GraphQLEnumType, GraphQLNonNull

import domain
from api.errors import ErrorCode
from api.schema import build_schema
from domain.errors import DomainError
from tests.conftest import OPS, WELCOME, Socket, enrolled, error_codes, next_update, purchase, until_live

CONTRACT_CODES = {
    "INVALID_INPUT",
    "NOT_FOUND",
    "INSUFFICIENT_POINTS",
    "OUT_OF_STOCK",
    "ALREADY_EXISTS",
    "ALREADY_REDEEMED",
    "EXPIRED",
    "NOT_ELIGIBLE",
    "IDEMPOTENCY_CONFLICT",
}

HISTORY = """
query($walletId: ID!) {
  node(id: $walletId) {
    ... on Wallet { balance pendingBalance entries(first: 10) { edges { node { amount balanceAfter } } } }
  }
}"""

CASHBACK = """
{ me {
    wallets { kind balance }
    cashbackWallet {
      kind
      balance { amount currency }
      pendingBalance { amount currency }
      entries(first: 5) { edges { node { kind amount { amount currency } balanceAfter { amount currency } } } }
    }
} }"""


def _all_integers(*values) -> bool:
    # JSON 220 parses to int; "220" to str and 220.0 to float: neither is what clients were promised.
    return all(type(v) is int for v in values)


# --- 1. points are Int, money is Money ----------------------------------------------


async def test_balances_and_ledger_amounts_arrive_as_json_integers(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    recorded = await purchase(gql, tokens, ana, "R-1", "12.00")
    assert _all_integers(recorded["purchase"]["pointsEarned"], recorded["wallet"]["balance"])
    assert recorded["wallet"]["balance"] == WELCOME + 120

    me = (await gql(OPS["Me"], token=ana.token))["data"]["me"]
    (wallet,) = me["wallets"]
    assert (wallet["kind"], wallet["unit"]) == ("POINTS", "POINTS")
    assert _all_integers(wallet["balance"], wallet["pendingBalance"], *(e["amount"] for e in wallet["expiringSoon"]))
    assert wallet["balance"] == WELCOME + 120

    history = (await gql(HISTORY, {"walletId": wallet["id"]}, token=ana.token))["data"]["node"]
    entries = [e["node"] for e in history["entries"]["edges"]]
    assert [(e["amount"], e["balanceAfter"]) for e in entries] == [(120, WELCOME + 120), (WELCOME, WELCOME)]
    assert _all_integers(*(n for e in entries for n in (e["amount"], e["balanceAfter"])))


async def test_a_wallet_update_arrives_with_integer_points(live_server, app, gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    sock = await Socket.open(live_server, ana.token)
    await sock.subscribe(OPS["WalletUpdated"])
    await until_live(app, ana)
    await purchase(gql, tokens, ana, "R-2", "3.00")
    update = (await next_update(sock))["walletUpdated"]
    await sock.close()
    wallet, entry = update["wallet"], update["entry"]
    assert (wallet["balance"], entry["amount"], entry["balanceAfter"]) == (WELCOME + 30, 30, WELCOME + 30)
    assert _all_integers(wallet["balance"], wallet["pendingBalance"], entry["amount"], entry["balanceAfter"])


async def test_cashback_is_money_with_its_currency(cashback_gql, tokens):
    ana = await enrolled(cashback_gql, tokens, "ana@example.com")
    recorded = await purchase(cashback_gql, tokens, ana, "C-1", "19.99")
    assert recorded["userErrors"] == []
    me = (await cashback_gql(CASHBACK, token=ana.token))["data"]["me"]
    # the points wallet stays integer points; cashback is its own wallet, in money
    assert me["wallets"] == [{"kind": "POINTS", "balance": WELCOME + 199}]
    cashback = me["cashbackWallet"]
    assert cashback["kind"] == "CASHBACK"
    assert cashback["balance"] == {"amount": "0.49", "currency": "EUR"}  # 2.5% of 19.99, rounded down
    assert cashback["pendingBalance"] == {"amount": "0.00", "currency": "EUR"}
    (entry,) = [e["node"] for e in cashback["entries"]["edges"]]
    assert entry == {
        "kind": "EARN",
        "amount": {"amount": "0.49", "currency": "EUR"},
        "balanceAfter": {"amount": "0.49", "currency": "EUR"},
    }

    got = await cashback_gql(
        "query($id: ID!) { node(id: $id) { ... on Purchase "
        "{ amount { amount currency } refundedAmount { amount } } } }",
        {"id": recorded["purchase"]["id"]},
        token=ana.token,
    )
    assert got["data"]["node"] == {
        "amount": {"amount": "19.99", "currency": "EUR"},
        "refundedAmount": {"amount": "0.00"},
    }


async def test_a_cashback_update_arrives_as_money_and_points_stay_apart(
    cashback_live_server, cashback_app, cashback_gql, tokens
):
    ana = await enrolled(cashback_gql, tokens, "ana@example.com")
    cash = await Socket.open(cashback_live_server, ana.token)
    await cash.subscribe(
        "subscription { cashbackUpdated { cursor wallet { balance { amount currency } } "
        "entry { kind amount { amount currency } balanceAfter { amount } } } }"
    )
    points = await Socket.open(cashback_live_server, ana.token)
    await points.subscribe(OPS["WalletUpdated"])
    await until_live(cashback_app, ana, count=2)
    await purchase(cashback_gql, tokens, ana, "C-2", "10.00")
    update = (await next_update(cash))["cashbackUpdated"]
    assert update["wallet"]["balance"] == {"amount": "0.25", "currency": "EUR"}
    assert update["entry"] == {
        "kind": "EARN",
        "amount": {"amount": "0.25", "currency": "EUR"},
        "balanceAfter": {"amount": "0.25"},
    }
    # the points subscriber gets the points change only, in integer points
    earned = (await next_update(points))["walletUpdated"]
    assert (earned["entry"]["amount"], earned["wallet"]["balance"]) == (100, WELCOME + 100)
    with pytest.raises(TimeoutError):
        await points.receive(timeout=0.5)
    await cash.close()
    await points.close()


async def test_a_program_without_cashback_has_no_cashback_wallet(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    assert (await gql("{ me { cashbackWallet { kind } } }", token=ana.token))["data"]["me"]["cashbackWallet"] is None


# --- 2. typed errors ------------------------------------------------------------------


def test_user_error_code_is_one_enum_with_the_contract_codes():
    schema = build_schema()._schema
    code = schema.type_map["UserError"].fields["code"].type
    assert isinstance(code, GraphQLNonNull) and isinstance(code.of_type, GraphQLEnumType)
    assert CONTRACT_CODES <= set(code.of_type.values)


def _domain_errors() -> set[type[DomainError]]:
    for module in pkgutil.walk_packages(domain.__path__, "domain."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found, todo = set(), [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("domain."):  # not a test's own subclass
                found.add(sub)
                todo.append(sub)
    return found


def test_every_code_the_domain_raises_is_in_the_enum():
    raised = {error.code for error in _domain_errors() | {DomainError}}
    assert raised >= CONTRACT_CODES  # the walk found the domain's errors
    assert raised <= {c.value for c in ErrorCode}, raised - {c.value for c in ErrorCode}


async def test_a_user_error_code_is_an_enum_value(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    reward = await gql(OPS["CreateReward"], {"name": "Cake", "pointsCost": 500}, token=tokens.marketer())
    reward_id = reward["data"]["createReward"]["reward"]["id"]
    short = await gql(OPS["RedeemReward"], {"rewardId": reward_id, "idempotencyKey": "k-1"}, token=ana.token)
    assert short["data"]["redeemReward"]["userErrors"][0]["code"] == "INSUFFICIENT_POINTS"
    # a client may select the code inside a fragment on the enum's type name
    typed = await gql('{ __type(name: "ErrorCode") { kind enumValues { name } } }')
    assert typed["data"]["__type"]["kind"] == "ENUM"


async def test_a_document_that_does_not_parse_has_a_code(gql, tokens):
    assert error_codes(await gql("{ me { id ", token=tokens.staff())) == ["GRAPHQL_PARSE_FAILED"]


async def test_a_document_that_does_not_validate_has_a_code(gql, tokens):
    result = await gql("{ me { id nope } rewards(first: 1) { nada } }", token=tokens.staff())
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_VALIDATION_FAILED"]


async def test_variables_that_do_not_coerce_have_a_code(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    wrong_type = await gql(OPS["Rewards"], {"first": "ten"}, token=ana.token)
    assert error_codes(wrong_type) == ["BAD_USER_INPUT"] and wrong_type.get("data") is None
    missing = await gql(OPS["Rewards"], {}, token=ana.token)
    assert error_codes(missing) == ["BAD_USER_INPUT"]
    enum = await gql(OPS["RegisterDevice"], {"fcmToken": "token-1234567890", "platform": "BLACKBERRY"}, token=ana.token)
    assert error_codes(enum) == ["BAD_USER_INPUT"]


async def test_a_bad_subscription_cursor_has_a_code(live_server, gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com")
    sock = await Socket.open(live_server, ana.token)
    for cursor in ("not-a-cursor", "YWJj"):  # garbage, and base64 of "abc"
        sid = await sock.subscribe(
            "subscription($after: String) { walletUpdated(after: $after) { cursor } }", {"after": cursor}
        )
        message = await sock.receive()
        assert message["id"] == sid and message["type"] in {"error", "next"}, message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["INVALID_INPUT"], message
        if message["type"] == "next":
            assert await sock.receive() == {"id": sid, "type": "complete"}
    # and a document that does not validate, over the socket too
    sid = await sock.subscribe("subscription { walletUpdated { nope } }")
    message = await sock.receive()
    assert message["type"] == "error" and [e["extensions"]["code"] for e in message["payload"]] == [
        "GRAPHQL_VALIDATION_FAILED"
    ]
    await sock.close()


def test_a_code_the_enum_lacks_still_answers():
    from api.errors import UserError

    class Unheard(DomainError):
        code = "SOMETHING_NEW"

    # the guard above fails the suite; in production the member still gets an answer
    (error,) = UserError.of(Unheard("It went wrong.", field="x"))
    assert (error.code, error.message, error.field) == (ErrorCode.INVALID_INPUT, "It went wrong.", "x")
