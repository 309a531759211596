"""Documents are priced before they are validated, cached or run: identical repeated
fields, aliases and page sizes count; each caller has a ceiling (far lower without a
token); over it, QUERY_TOO_COMPLEX and nothing else happens. Only documents that
validated are cached, and the cache is bounded by bytes."""

from __future__ import annotations

import pytest
from graphql import parse

from api.cost import MAX_OVERLAP, DocumentCache, Prices, price
from api.schema import build_schema
from domain.identity.tokens import Role
from tests.conftest import DOCUMENTS, REQUIRED, enroll, error_codes, member_uuid

BOMB = "{ " + "me { id } " * 490 + "}"
AMPLIFIED = (
    "{ "
    + " ".join(
        f"a{i}: members(first: 100) {{ edges {{ node {{ id wallets {{ entries(first: 100) "
        "{ edges { node { id amount } } } } } } }"
        for i in range(30)
    )
    + " }"
)
# 40 fragments, each spreading the one before twice: 2^40 fields once expanded.
FRAGMENT_CHAIN = (
    "fragment F0 on Member { id } "
    + " ".join(f"fragment F{i} on Member {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 40))
    + " { me { ...F39 } }"
)
# 602 with pages of 100: over the anonymous ceiling (500), far under a member's (5,000).
NOTIFICATIONS = "{ me { notifications(first: 100) { edges { node { id title body kind } } } } }"


@pytest.fixture
async def ana(gql, tokens) -> dict:
    member = await enroll(gql, tokens, "ana@example.com")
    return {**member, "token": tokens.member(member_uuid(member["id"]))}


def _documents(app):
    return app.state.schema.documents


def _too_complex(result: dict) -> None:
    assert result.get("data") is None, result
    assert error_codes(result) == ["QUERY_TOO_COMPLEX"], result


async def test_the_validation_bomb_is_refused_by_price_and_not_cached(app, gql):
    before = _documents(app).bytes
    for _ in range(3):
        result = await gql(BOMB)
        _too_complex(result)
        assert "Validation aborted" not in str(result)  # refused before validation ran
    assert _documents(app).bytes == before


@pytest.mark.parametrize("role", [Role.MEMBER, Role.STAFF])
async def test_repeated_identical_fields_count_for_every_caller(gql, tokens, ana, role):
    token = ana["token"] if role is Role.MEMBER else tokens.staff()
    _too_complex(await gql(BOMB, token=token))


@pytest.mark.parametrize(
    "document",
    [
        pytest.param("{ " + "me { id } " * 17 + "}", id="17 identical fields"),
        pytest.param("fragment F on Member { id } { me { " + "...F " * 25 + "} }", id="a fragment spread 25 times"),
        pytest.param(
            " ".join(f"fragment F{i} on Member {{ id email }}" for i in range(17))
            + " { me { "
            + " ".join(f"...F{i}" for i in range(17))
            + " } }",
            id="17 fragments asking for the same fields",
        ),
    ],
)
async def test_same_named_fields_are_capped_for_everyone(gql, tokens, ana, document):
    """Cheap to run (they merge), but the validator compares every pair: a staff token's
    high ceiling does not lift this cap. A field asked for twice, as documents do, runs."""
    _too_complex(await gql(document, token=tokens.staff()))
    twice = await gql("fragment F on Member { id email } { me { id ...F } me { email } }", token=ana["token"])
    assert twice == {"data": {"me": {"id": ana["id"], "email": "ana@example.com"}}}


async def test_aliased_pages_multiply_and_are_refused(gql, tokens, ana, database):
    _too_complex(await gql(AMPLIFIED, token=tokens.staff()))
    _too_complex(await gql(AMPLIFIED, token=tokens.marketer()))
    # one of those aliases alone, with a smaller page under it, is a staff tool's query
    one = "{ members(first: 100) { edges { node { id wallets { entries(first: 20) { edges { node { id } } } } } } } }"
    result = await gql(one, token=tokens.staff())
    assert "errors" not in result and len(result["data"]["members"]["edges"]) == 1


async def test_a_fragment_chain_is_priced_without_expanding_it(gql, ana):
    _too_complex(await gql(FRAGMENT_CHAIN, token=ana["token"]))


async def test_the_ceiling_is_lower_without_a_token(gql, ana):
    _too_complex(await gql(NOTIFICATIONS))
    result = await gql(NOTIFICATIONS, token=ana["token"])
    assert "errors" not in result and result["data"]["me"]["notifications"]["edges"] == []


async def test_page_sizes_from_variables_count(gql, ana):
    document = "query($n: Int!) { me { notifications(first: $n) { edges { node { id title body kind } } } } }"
    for _ in range(2):  # the second time, the document is cached and its prices remembered
        small = await gql(document, {"n": 5})
        assert error_codes(small) == ["UNAUTHENTICATED"]  # priced under the ceiling: it ran, and needs a token
        _too_complex(await gql(document, {"n": 100}))


def test_remembered_prices_are_the_prices_of_the_variables_given():
    schema = build_schema()._schema
    text = (
        "query($f: Int, $g: Int!, $w: ID!) { node(id: $w) { id } me { notifications(first: $f) "
        "{ edges { node { id } } } wallets { entries(first: $g) { edges { node { id } } } } } }"
    )
    document = parse(text)
    prices = Prices()
    given = [
        {"f": 1, "g": 1, "w": "a"},
        {"f": 100, "g": 1, "w": "a"},
        {"f": 1, "g": 100, "w": "b"},  # another node id: the same price
        {"f": None, "g": 5},  # null: the argument's default
        {"g": 5},  # absent: the same
        {"f": True, "g": 1},  # not an int: priced as the largest page, not as 1
        {"f": 1.0, "g": 1},
        {"f": "7", "g": 1},
        {"f": [1], "g": 1},  # unhashable: priced each time
    ]
    for variables in given * 2:
        assert prices.price(schema, text, document, variables) == price(schema, document, variables), variables


async def test_failed_validation_is_never_cached_and_valid_documents_are(app, gql, ana):
    cache = _documents(app)
    before = cache.bytes
    invalid = "{ me { id nope } }"
    for _ in range(2):
        assert (await gql(invalid, token=ana["token"]))["errors"]
    assert cache.bytes == before and cache.get(invalid) is None
    valid = "{ me { id email } }"
    assert "errors" not in await gql(valid, token=ana["token"])
    assert cache.get(valid) is not None and cache.bytes > before


def test_the_cache_is_bounded_by_bytes():
    cache = DocumentCache(max_bytes=100_000)
    for i in range(1_000):
        text = "{ me { id } }" + " " * i  # distinct texts, growing
        cache.put(text, parse(text))
        assert cache.bytes <= 100_000
    assert cache.get("{ me { id } }") is None  # the oldest went first
    huge = "{ me { id } }" + " " * 10_000
    cache.put(huge, parse(huge))  # larger than the whole cache: not kept
    assert cache.get(huge) is None and cache.bytes <= 100_000


ROLE_OF = {"member-app": Role.MEMBER, "pos": Role.STAFF, "marketer": Role.MARKETER}


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_client_document_fits_under_its_ceiling_at_the_largest_page(settings, name):
    path, text = DOCUMENTS[name]
    role = ROLE_OF[path.stem]
    ceiling = {Role.MEMBER: settings.cost_limit_member, Role.STAFF: settings.cost_limit_staff}.get(
        role, settings.cost_limit_marketer
    )
    variables = {"first": 100}
    priced = price(build_schema()._schema, parse(text), variables)
    assert priced.cost <= ceiling and priced.overlap <= MAX_OVERLAP
