"""What a document costs, priced from its syntax tree before it is validated, cached or
run, and the cache of documents that passed.

The price counts every field where it appears (a repeated identical field counts each
time), multiplied by the page sizes above it (`first`/`last`: `members(first: 100)`
multiplies what is under it by 100), plus the pairs of same-named fields that one
selection merges: graphql-core's overlapping-fields rule compares each such pair, so
`{ me{id} me{id} … }` x490 costs ~120,000 comparisons (~0.6 s of one core) before it
even answers "Validation aborted.". Pricing is one walk over the tree, each fragment
priced once, so it takes a millisecond where validating the same document took a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.pyutils import Undefined
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from api.relay import MAX_PAGE
from domain.identity.tokens import Role

PAGE_ARGUMENTS = ("first", "last")
# The cache of validated documents holds at most this many bytes, estimated from the
# text: a parsed tree takes 60-130 bytes per character (tracemalloc, graphql-core 3.3).
CACHE_BYTES = 32 * 1024 * 1024
TREE_BYTES_PER_CHAR = 130

# Comparisons of same-named fields allowed in any document, whoever sends it: each
# costs the validator ~5-10 us here, so this keeps validation within a few ms.
MAX_OVERLAP = 250

DEFAULT_CEILINGS = {None: 500, Role.MEMBER: 5_000, Role.STAFF: 20_000, Role.MARKETER: 20_000}


@dataclass
class _Priced:
    """A selection merged at one level: its cost without the pairs of this level, and
    per response name how many fields share it and the largest cost under one of them."""

    cost: int = 0
    names: dict[str, list[int]] = field(default_factory=dict)

    def add_field(self, name: str, cost: int, under: int) -> None:
        self.cost += cost
        seen = self.names.setdefault(name, [0, 0])
        seen[0] += 1
        seen[1] = max(seen[1], under)

    def merge(self, other: _Priced) -> None:
        self.cost += other.cost
        for name, (count, under) in other.names.items():
            seen = self.names.setdefault(name, [0, 0])
            seen[0] += count
            seen[1] = max(seen[1], under)

    def pairs(self) -> int:
        # Each pair of same-named fields is compared, and so is what lies under them.
        return sum(count * (count - 1) // 2 * (1 + under) for count, under in self.names.values())


class _Pricing:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        self.schema = schema
        self.variables = variables if isinstance(variables, dict) else {}
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self.priced_fragments: dict[str, _Priced] = {}
        self.defaults: dict[str, Any] = {}
        self.overlap = 0  # the validator's comparisons of same-named fields, all levels
        self.read: set[str] = set()  # the variables the price depends on

    def total(self, priced: _Priced) -> int:
        pairs = priced.pairs()
        self.overlap += pairs
        return priced.cost + pairs

    def operation(self, operation: OperationDefinitionNode) -> int:
        for definition in operation.variable_definitions or ():
            if isinstance(definition.default_value, IntValueNode):
                self.defaults[definition.variable.name.value] = int(definition.default_value.value)
        root = self.schema.get_root_type(operation.operation)
        return self.total(self.selection(operation.selection_set, root))

    def selection(self, selection_set: SelectionSetNode | None, parent: Any) -> _Priced:
        priced = _Priced()
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                definition = _field(parent, node.name.value)
                child = get_named_type(definition.type) if definition else None
                under = self.total(self.selection(node.selection_set, child)) if node.selection_set else 0
                multiplier = self.page_size(node, definition)
                name = node.alias.value if node.alias else node.name.value
                priced.add_field(name, 1 + multiplier * under, under)
            elif isinstance(node, InlineFragmentNode):
                condition = self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
                priced.merge(self.selection(node.selection_set, condition))
            elif isinstance(node, FragmentSpreadNode):
                priced.merge(self.fragment(node.name.value))
        return priced

    def fragment(self, name: str) -> _Priced:
        if name not in self.priced_fragments:
            definition = self.fragments.get(name)
            self.priced_fragments[name] = _Priced()  # a cycle counts nothing: validation refuses it
            if definition is not None:
                condition = self.schema.get_type(definition.type_condition.name.value)
                self.priced_fragments[name] = self.selection(definition.selection_set, condition)
        return self.priced_fragments[name]

    def page_size(self, node: FieldNode, definition: Any) -> int:
        if definition is None:
            return 1
        # Every variable a page argument names, whatever its value (one being null
        # makes the next argument count): the price depends on these and no others.
        self.read.update(
            a.value.name.value
            for a in node.arguments or ()
            if a.name.value in PAGE_ARGUMENTS and isinstance(a.value, VariableNode)
        )
        for argument in PAGE_ARGUMENTS:
            if argument not in definition.args:
                continue
            given = next((a.value for a in node.arguments or () if a.name.value == argument), None)
            if isinstance(given, IntValueNode):
                value: Any = int(given.value)
            elif isinstance(given, VariableNode):
                name = given.name.value
                value = self.variables.get(name, self.defaults.get(name))
            else:
                value = definition.args[argument].default_value
            if value is None or value is Undefined:
                continue
            # Past the resolvers' bounds the field is refused; a value of the wrong
            # type is refused by coercion: price it as the largest page.
            return max(1, min(value, MAX_PAGE)) if isinstance(value, int) else MAX_PAGE
        return 1


def _field(parent: Any, name: str) -> Any:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if fields else None


@dataclass(frozen=True)
class Price:
    cost: int  # what running it takes, and validating it
    overlap: int  # the part of it that is comparisons of same-named fields


def price(schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None = None) -> Price:
    """The price of every operation of the document (the validator reads them all)."""
    return _priced(schema, document, variables)[0]


def _priced(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None
) -> tuple[Price, frozenset[str]]:
    """The price, and the names of the variables it depends on (page sizes)."""
    pricing = _Pricing(schema, document, variables)
    cost = sum(pricing.operation(d) for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return Price(cost, pricing.overlap), frozenset(pricing.read)


_ABSENT = object()
# Per document text, prices for this many combinations of its page-size variables.
PRICES_PER_DOCUMENT = 32


class Prices:
    """The prices of documents that validated, by their text and the values of the
    variables their price reads: the same document with the same page sizes is priced
    once (pricing the app's `Me` took ~6 % of its CPU). Bounded by the bytes of text held."""

    def __init__(self, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._memo: LRUCache[str, tuple[frozenset[str], dict, int]] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: entry[2]
        )

    def price(self, schema: GraphQLSchema, query: str, document: DocumentNode, variables: Any) -> Price:
        variables = variables if isinstance(variables, dict) else {}
        memo = self._memo.get(query)
        key = _values(memo[0], variables) if memo else None
        if memo and key is not None and key in memo[1]:
            return memo[1][key]
        priced, reads = _priced(schema, document, variables)
        if memo is None:
            memo = (reads, {}, len(query) + 1024)
            if memo[2] <= self._memo.maxsize:
                self._memo[query] = memo
        key = _values(reads, variables)
        if key is not None and len(memo[1]) < PRICES_PER_DOCUMENT:
            memo[1][key] = priced
        return priced


def _values(names: frozenset[str], variables: dict[str, Any]) -> tuple | None:
    """The values of `names`, with their types (True is not 1 here), if hashable."""
    values = tuple((name, type(value), value) for name in sorted(names) for value in [variables.get(name, _ABSENT)])
    try:
        hash(values)
    except TypeError:  # a list or an object where a page size goes: priced each time
        return None
    return values


def ceiling_for(context: Any) -> tuple[str, int]:
    """Who is asking (a role, or anonymous) and the most their documents may cost."""
    principal = context.principal() if hasattr(context, "principal") else None
    role = principal.role if principal is not None else None
    services = getattr(context, "services", None)
    settings = getattr(services, "settings", None)
    if settings is None:
        return _caller(role), DEFAULT_CEILINGS[role]
    limit = {
        None: settings.cost_limit_anonymous,
        Role.MEMBER: settings.cost_limit_member,
        Role.STAFF: settings.cost_limit_staff,
        Role.MARKETER: settings.cost_limit_marketer,
    }[role]
    return _caller(role), limit


def _caller(role: Role | None) -> str:
    return f"a {role.value} token" if role else "a request without a token"


class DocumentCache:
    """Documents that parsed and validated, by their text; bounded by bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._documents: LRUCache[str, DocumentNode] = LRUCache(maxsize=max_bytes, getsizeof=lambda entry: entry[1])
        self.prices = Prices()  # of the documents that validated, this cache's and the trusted ones

    def get(self, query: str) -> DocumentNode | None:
        entry = self._documents.get(query)
        return entry[0] if entry else None

    def put(self, query: str, document: DocumentNode) -> None:
        size = max(1, len(query) * TREE_BYTES_PER_CHAR)
        if size <= self._documents.maxsize:
            self._documents[query] = (document, size)

    @property
    def bytes(self) -> int:
        return int(self._documents.currsize)


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX"})


def _trusted(context: Any, query: str) -> DocumentNode | None:
    """A trusted document's tree, parsed and validated when its manifest was loaded."""
    services = getattr(context, "services", None)
    documents = getattr(services, "documents", None)
    trusted = documents.trusted.of_text(query) if documents is not None else None
    return trusted.document if trusted is not None else None


class PriceBeforeValidating:
    """Parse (or take the cached tree), price, and only then validate; cache the
    documents that validated, never those that failed or were refused. One per
    operation: `parse`, `validate` and `validated` run as those phases start and end."""

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache
        self.cached = False

    def parse(self, ec: ExecutionContext) -> None:
        if ec.query is not None and ec.graphql_document is None:
            document = _trusted(ec.context, ec.query) or self.cache.get(ec.query)
            if document is not None:
                ec.graphql_document = document
                self.cached = True

    async def validate(self, ec: ExecutionContext) -> None:
        assert ec.graphql_document is not None
        if ec.pre_execution_errors is not None:  # refused already (rate limits)
            return
        caller, ceiling = ceiling_for(ec.context)
        if self.cached and ec.query is not None:
            priced = self.cache.prices.price(ec.schema._schema, ec.query, ec.graphql_document, ec.variables)
        else:
            priced = price(ec.schema._schema, ec.graphql_document, ec.variables)
        if priced.overlap > MAX_OVERLAP:
            ec.pre_execution_errors = [
                _too_complex(
                    f"This document repeats fields of the same name too often ({priced.overlap} comparisons; "
                    f"at most {MAX_OVERLAP}). Ask for each field once."
                )
            ]
        elif priced.cost > ceiling:
            ec.pre_execution_errors = [
                _too_complex(
                    f"This document costs {priced.cost}; the most allowed for {caller} is {ceiling}. "
                    "Ask for fewer fields, fewer aliases or smaller pages."
                )
            ]
        elif self.cached:
            ec.pre_execution_errors = []  # validated when it was cached
        else:
            # Priced, so bounded: ~1,000 fields take the validator 10-30 ms here. In a
            # worker thread the event loop keeps serving meanwhile (the GIL is handed
            # over every few ms) instead of stalling every other client.
            rules = ec.validation_rules
            ec.pre_execution_errors = await asyncio.to_thread(
                validate_document, ec.schema._schema, ec.graphql_document, rules
            )

    def validated(self, ec: ExecutionContext) -> None:
        if not self.cached and ec.pre_execution_errors == [] and ec.query is not None:
            self.cache.put(ec.query, ec.graphql_document)
