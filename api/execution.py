"""The executor: graphql-core's, with plain fields answered in place.

Most fields of an answer are plain attributes: a strawberry field with no resolver, no
permission, no extension and no arguments, whose type is a scalar or an enum
(`memberNumber`, `balance`, `occurredAt`). For each of them graphql-core builds a path,
a resolve info and a field-resolver chain, calls strawberry's wrapper, which calls the
field's `get_result`, which calls `getattr`, and then completes the value through five
type checks: ~25 Python calls to read one attribute (WalletHistory(first: 20) has 166
such fields; `Me` 21). Here such a field is read and serialised directly: the attribute
(strawberry's default resolver), then the type's own `coerce_output_value`.

Anything else, and any plain field whose value is null where the type forbids it or
that fails to serialise, goes the ordinary way, so errors (messages, paths, null
propagation) are graphql-core's own. With a resolve middleware (a schema extension
with a `resolve` hook) nothing is taken out of the ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from graphql import GraphQLField, GraphQLNonNull, GraphQLObjectType, is_leaf_type
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# A plain field: (python attribute, serialiser, nullable).
Plain = tuple[str, Callable[[Any], Any], bool]

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


class PlainFieldsExecutor(StrawberryGraphQLCoreExecutionContext):
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
                if plain is not None:
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
