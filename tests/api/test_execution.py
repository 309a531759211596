"""The executor (api/execution.py): plain fields answered in place, and an operation's
selections collected once. What a client sees must not change: every answer follows
its own variables, aliases and fragments, however often the document ran before."""

from __future__ import annotations

from tests.conftest import enrolled

OPTIONAL = """
query Profile($withEmail: Boolean!, $skipCard: Boolean!) {
  me {
    id
    email @include(if: $withEmail)
    ...Card @skip(if: $skipCard)
  }
}
fragment Card on Member { memberNumber displayName }
"""

SHAPED = """
query Shaped {
  me {
    ...Names
    number: memberNumber
    again: memberNumber
    birthday
    preferences { timezone consent: pushMarketing }
  }
}
fragment Names on Member { id name: displayName email }
"""


async def test_a_cached_document_follows_each_request_s_variables(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com", displayName="Ana")
    answers = []
    for with_email, skip_card in [(True, False), (False, True), (True, True), (False, False)]:
        result = await gql(OPTIONAL, {"withEmail": with_email, "skipCard": skip_card}, token=ana.token)
        answers.append(result["data"]["me"])
    card = {"memberNumber": ana.number, "displayName": "Ana"}
    assert answers == [
        {"id": ana.id, "email": "ana@example.com", **card},
        {"id": ana.id},
        {"id": ana.id, "email": "ana@example.com"},
        {"id": ana.id, **card},
    ]


async def test_aliases_fragments_and_nulls_answer_alike_every_time(gql, tokens):
    ana = await enrolled(gql, tokens, "ana@example.com", displayName="Ana")
    bea = await enrolled(gql, tokens, "bea@example.com")
    for _ in range(3):  # the first run parses and collects; the others reuse both
        for member, name in ((ana, "Ana"), (bea, None)):
            result = await gql(SHAPED, token=member.token)
            assert "errors" not in result, result
            assert list(result["data"]["me"]) == ["id", "name", "email", "number", "again", "birthday", "preferences"]
            assert result["data"]["me"] == {
                "id": member.id,
                "name": name,
                "email": f"{name.lower() if name else 'bea'}@example.com",
                "number": member.number,
                "again": member.number,
                "birthday": None,
                "preferences": {"timezone": "UTC", "consent": False},
            }


# A schema of its own: the same documents under graphql-core's executor and ours must give
# the same data and the same errors (messages, paths, nulls propagated to the same place),
# for the objects ours answers without graphql-core's field path (non-null, plain).
import strawberry  # noqa: E402

from api.execution import PlainFieldsExecutor  # noqa: E402


@strawberry.interface
class _Named:  # with an interface, strawberry gives the types an is_type_of to check
    name: str


@strawberry.type
class _Leaf(_Named):
    @strawberry.field
    def broken(self) -> str:
        raise ValueError("broken leaf")

    @strawberry.field
    def maybe(self) -> str | None:
        raise ValueError("nullable leaf")


@strawberry.type
class _Other:
    name: str


@strawberry.type
class _Box:
    leaf: _Leaf
    wrong: _Leaf  # holds an _Other: graphql-core's type check must still say so
    cast: _Leaf  # holds a _Leaf cast to _Other
    missing: _Leaf  # holds None


@strawberry.type
class _Query:
    @strawberry.field
    def box(self) -> _Box | None:
        return _Box(
            leaf=_Leaf(name="a"),
            wrong=_Other(name="b"),
            cast=strawberry.cast(_Other, _Leaf(name="c")),
            missing=None,
        )

    @strawberry.field
    def boxes(self) -> list[_Box]:
        return [self.box(), self.box()]


async def test_objects_answered_in_place_give_graphql_cores_data_and_errors():
    plain, ours = strawberry.Schema(_Query), strawberry.Schema(_Query, execution_context_class=PlainFieldsExecutor)
    documents = [
        "{ box { leaf { name maybe } } }",
        "{ box { leaf { name broken } } }",
        "{ box { leaf { name } wrong { name } } }",
        "{ box { cast { name } } }",
        "{ box { missing { name } } }",
        "{ boxes { leaf { name maybe } } }",
        "{ boxes { leaf { broken } } }",
        "{ a: box { l: leaf { n: name } } b: box { leaf { ...F } } } fragment F on _Leaf { name maybe }",
    ]
    for document in documents:
        for _ in range(2):  # the second run uses the collected selections
            want, got = await plain.execute(document), await ours.execute(document)
            assert got.data == want.data, document
            assert [(e.message, e.path) for e in got.errors or []] == [
                (e.message, e.path) for e in want.errors or []
            ], document
    # the cases answer what they should, so the comparison above compares something
    assert (await ours.execute(documents[0])).data == {"box": {"leaf": {"name": "a", "maybe": None}}}
    broken = await ours.execute(documents[1])
    assert broken.data == {"box": None} and broken.errors[0].path == ["box", "leaf", "broken"]
    for wrong in (documents[2], documents[3]):  # another type; a cast to another type
        answer = await ours.execute(wrong)
        assert answer.data == {"box": None} and "Expected value of type" in answer.errors[0].message
