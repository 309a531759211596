"""The executor: graphql-core's, with plain fields answered in place.

Most fields of an answer are plain attributes: a strawberry field with no resolver, no
permission, no extension and no arguments, whose type is a scalar or an enum
(`memberNumber`, `balance`, `occurredAt`). For each of them graphql-core builds a path,
a resolve info and a field-resolver chain, calls strawberry's wrapper, which calls the
field's `get_result`, which calls `getattr`, and then completes the value through five
type checks: ~25 Python calls to read one attribute (WalletHistory(first: 20) has 166
such fields; `Me` 21). Here such a field is read and serialised directly: the attribute
(strawberry's default resolver), then the type's own `coerce_output_value`.

An object value of an object type also goes straight to its fields, past graphql-core's
checks for the other kinds of type (list, leaf, abstract) and for null. A plain field
whose type is a non-null object type (an edge's `node`, a connection's `pageInfo`) holding
an object of exactly that type goes to its fields without graphql-core's field path
(resolve info, resolver chain, `is_type_of`): its errors reach the parent as they would
anyway, since the field cannot be null; another value takes the ordinary path.

The fields each selection set selects (graphql-core's `collect_subfields`) are worked out
once per operation and type, not once per request, for operations without directives
(nothing in them then depends on the variables): a parsed document is cached or trusted
(api/cost.py, api/documents.py), so the same operation runs again and again.

Anything else, and any plain field whose value is null where the type forbids it or
that fails to serialise, goes the ordinary way, so errors (messages, paths, null
propagation) are graphql-core's own. With a resolve middleware (a schema extension
with a `resolve` hook) nothing is taken out of the ordinary path.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import DirectiveNode, GraphQLField, GraphQLNonNull, GraphQLObjectType, Visitor, is_leaf_type, visit
from graphql.language import BREAK
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.cast import get_strawberry_type_cast

# A plain field: (python attribute, serialiser, nullable) for a scalar or an enum;
# (python attribute, None, the object type, its Python class) for an object that cannot be null.
Plain = tuple[str, Callable[[Any], Any], bool] | tuple[str, None, GraphQLObjectType, type]

_plans: WeakKeyDictionary[GraphQLObjectType, dict[str, Plain]] = WeakKeyDictionary()


def _plain(field: GraphQLField) -> Plain | None:
    definition = (field.extensions or {}).get("strawberry-definition")
    resolve = field.resolve
    if (
        definition is None
        or field.args
        or not definition.is_basic_field
        # strawberry's resolver for a basic field (no exception handler applies to it)
        or getattr(resolve, "__name__", "") != "_get_basic_result"
        or getattr(definition, "default_resolver", getattr) is not getattr
    ):
        return None
    nullable = not isinstance(field.type, GraphQLNonNull)
    named = field.type if nullable else field.type.of_type
    if isinstance(named, GraphQLObjectType) and not nullable:
        # Its errors go to the parent as graphql-core sends them (a non-null field's do).
        origin = getattr((named.extensions or {}).get("strawberry-definition"), "origin", None)
        return (definition.python_name, None, named, origin) if origin is not None else None
    if not is_leaf_type(named):
        return None
    return definition.python_name, named.coerce_output_value, nullable


def plan_of(parent_type: GraphQLObjectType) -> dict[str, Plain]:
    """The plain fields of a type, by GraphQL name (worked out once per type)."""
    plan = _plans.get(parent_type)
    if plan is None:
        plan = {name: p for name, field in parent_type.fields.items() if (p := _plain(field)) is not None}
        _plans[parent_type] = plan
    return plan


# Operations whose selections were collected, most recently used last: id of the
# operation -> (the operation and its fragments, kept alive so that the ids of their
# nodes stay theirs; its selections by (type, ids of the field nodes), or None when it
# has directives).
MAX_OPERATIONS = 512
_selections: OrderedDict[int, tuple[Any, tuple, dict | None]] = OrderedDict()


class _Directives(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_directive(self, node: DirectiveNode, *_args: Any) -> Any:
        self.found = True
        return BREAK


def _has_directives(nodes: Any) -> bool:
    finder = _Directives()
    for node in nodes:
        visit(node, finder)
        if finder.found:
            return True
    return False


def _selections_of(operation: Any, fragments: dict) -> dict | None:
    entry = _selections.get(id(operation))
    if entry is not None and entry[0] is operation:
        _selections.move_to_end(id(operation))
        return entry[2]
    memo = None if _has_directives([operation, *(f.definition for f in fragments.values())]) else {}
    _selections[id(operation)] = (operation, tuple(fragments.values()), memo)
    if len(_selections) > MAX_OPERATIONS:
        _selections.popitem(last=False)
    return memo


class PlainFieldsExecutor(StrawberryGraphQLCoreExecutionContext):
    _memo: Any = ()  # not looked up yet

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any) -> Any:
        # graphql-core's own memo first: this request's list items share their selections.
        local = (return_type, id(field_details_list))
        cached = self._relevant_sub_fields.get(local)
        if cached is not None:
            return cached[1]
        memo = self._memo
        if memo == ():
            memo = self._memo = _selections_of(self.operation, self.fragments)
        if memo is None or any(d.fragment_variable_values is not None for d in field_details_list):
            return super().collect_subfields(return_type, field_details_list)
        key = (return_type, *(id(d.node) for d in field_details_list))
        collected = memo.get(key)
        if collected is None:
            return memo.setdefault(key, super().collect_subfields(return_type, field_details_list))
        self._relevant_sub_fields[local] = (field_details_list, collected)
        return collected

    def complete_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        # An object (a value, not null, not an error) of an object type, null allowed or
        # not: straight to its fields, past graphql-core's checks for the other kinds.
        if result is not None and not isinstance(result, Exception):
            named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
            if isinstance(named, GraphQLObjectType):
                return self.complete_object_value(named, field_details_list, info, path, result, position_context)
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        # graphql-core's execute_fields, with the plain fields answered in place.
        middleware = self.middleware_manager
        plan = {} if middleware is not None and middleware.middlewares else plan_of(parent_type)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list in grouped_field_set.items():
                plain = plan.get(field_details_list[0].node.name.value)
                if plain is not None and plain[1] is None:
                    # An object of exactly the field's type (so strawberry's is_type_of holds
                    # without asking), not cast to another: straight to its fields.
                    value = getattr(source_value, plain[0], None)
                    if type(value) is plain[3] and get_strawberry_type_cast(value) is None:
                        result = self.collect_and_execute_subfields(
                            plain[2],
                            field_details_list,
                            Path(path, response_name, parent_type.name),
                            value,
                            position_context,
                        )
                        results[response_name] = result
                        if is_awaitable(result):
                            awaitable_fields.append(response_name)
                        continue
                elif plain is not None:
                    try:
                        value = getattr(source_value, plain[0])
                        if value is None:
                            if plain[2]:
                                results[response_name] = None
                                continue
                        else:
                            coerced = plain[1](value)
                            if coerced is not None and coerced is not Undefined:
                                results[response_name] = coerced
                                continue
                    except Exception:
                        pass
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
