"""One check for every argument of every operation: each string in the variables and in
the document's literals must be text (domain.text.problem) before anything runs.

It runs on the operation, not per field, so queries, mutations and subscriptions, over
HTTP and WebSocket, nested input fields and list items are all covered; the resolvers
and the domain then see only storable text. Per-field rules (lengths, formats, names)
stay where they belong, in the domain."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from graphql.language import StringValueNode, Visitor, visit
from strawberry.types import ExecutionContext

from domain import text


class _Strings(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def enter_string_value(self, node: StringValueNode, *_args) -> None:
        self.found.append(node.value)


def _variable_strings(variables: dict) -> Iterator[tuple[str, str]]:
    """(where, value) for every string in the variables, however nested."""
    stack: list[tuple[str, object]] = [(f"${name}", value) for name, value in variables.items()]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            yield where, value
        elif isinstance(value, dict):
            stack.extend((f"{where}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def _refuse(where: str, reason: str) -> GraphQLError:
    where = where[:100]  # variable names and keys are the client's: not echoed at length
    return GraphQLError(f"{where} {reason}.", extensions={"code": "INVALID_INPUT", "field": where})


def check_text(context: ExecutionContext) -> None:
    """Raises INVALID_INPUT for the first string of the variables or the document's
    literals that is not storable text."""
    for where, value in _variable_strings(context.variables or {}):
        if reason := text.problem(value):
            raise _refuse(where, reason)
    query = context.query or ""
    # A literal can only break the rule through a \u escape, a non-ASCII character or
    # sheer length (the lexer refuses raw controls): skip the walk for everyday documents.
    if context.graphql_document is not None and ("\\u" in query or not query.isascii() or len(query) > text.MAX_LENGTH):
        strings = _Strings()
        visit(context.graphql_document, strings)
        for value in strings.found:
            if reason := text.problem(value):
                raise _refuse("A string in the document", reason)
