"""Rate limits: the operations worth abusing (sign-in, refresh, card look-ups, purchases,
locations) and all traffic without a token, counted per client address and per token.

The counting is the `limits` package's sliding window counter (constant memory per
key, where a moving window keeps every hit), in this process's memory by default;
LOYALTY_RATE_STORAGE names a shared store (redis://…) when several processes serve
the same clients. Over a limit: HTTP 429 with Retry-After, and a GraphQL error
with `extensions.code = "RATE_LIMITED"` (the same error over a WebSocket).
"""

from __future__ import annotations

import math
import time
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
)
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import ConfigurationError as StorageError
from limits.storage import storage_from_string
from strawberry.types import ExecutionContext

from domain.settings import ConfigurationError, Settings


class RateLimits:
    """The limits of one process, read from the settings once."""

    def __init__(self, settings: Settings) -> None:
        try:
            self.fields: dict[str, list[RateLimitItem]] = {
                "signInWithFirebase": parse_many(settings.rate_sign_in),
                "refreshSession": parse_many(settings.rate_refresh),
                "memberByCard": parse_many(settings.rate_member_by_card),
                "recordPurchase": parse_many(settings.rate_record_purchase),
                "reportLocation": parse_many(settings.rate_report_location),
            }
            self.anonymous = parse_many(settings.rate_anonymous)
            storage = storage_from_string(f"async+{settings.rate_storage}")
        except (ValueError, StorageError) as exc:
            raise ConfigurationError(f"LOYALTY_RATE_*: {exc}") from None
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def spend(self, items: list[RateLimitItem], scope: str, callers: list[str], cost: int) -> int | None:
        """Count `cost` hits for each caller; the seconds to wait when one is over."""
        for item in items:
            for caller in callers:
                if not await self.limiter.hit(item, scope, caller, cost=cost):
                    stats = await self.limiter.get_window_stats(item, scope, caller)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        return None


def _callers(context: Any) -> list[str]:
    """Who to count against: the client's address, and the token's holder."""
    callers = [f"address:{getattr(context, 'client', None) or 'unknown'}"]
    principal = context.principal()
    if principal is not None:
        callers.append(f"token:{principal.role.value}:{principal.subject}")
    return callers


def root_fields(document: DocumentNode, operation_name: str | None) -> dict[str, int]:
    """How many times each root field of the operation to run appears (aliases, and
    fragments spread at the root, included)."""
    operation = get_operation_ast(document, operation_name)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    counts: dict[str, int] = {}
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                counts[node.name.value] = counts.get(node.name.value, 0) + 1
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                seen.add(node.name.value)  # validation has refused a fragment spread twice at one level
                fragment = fragments.get(node.name.value)
                walk(fragment.selection_set if fragment else None)

    walk(operation.selection_set if operation else None)
    return counts


def _refusal(context: Any, retry_after: int) -> GraphQLError:
    response = getattr(context, "response", None)
    if response is not None and hasattr(response, "status_code"):  # HTTP; a WebSocket gets the error alone
        response.status_code = 429
        response.headers["Retry-After"] = str(retry_after)
    return GraphQLError(
        f"Too many requests: try again in {retry_after} s.",
        extensions={"code": "RATE_LIMITED", "retryAfter": retry_after},
    )


async def refuse_anonymous(ec: ExecutionContext) -> None:
    """Anonymous traffic is counted before the document is even priced: over the limit,
    the error is set before validation (strawberry then skips it and answers with it)."""
    limits = _limits(ec.context)
    if limits is not None and ec.context.principal() is None:
        wait = await limits.spend(limits.anonymous, "anonymous", _callers(ec.context)[:1], 1)
        if wait is not None:
            ec.pre_execution_errors = [_refusal(ec.context, wait)]


async def refuse_limited_fields(ec: ExecutionContext) -> None:
    """The limited operations, once the document is known to be valid, before anything
    runs: over a limit, a result set before execution is returned instead of executing."""
    limits = _limits(ec.context)
    if limits is None or ec.graphql_document is None:
        return
    fields = root_fields(ec.graphql_document, ec.operation_name)
    if not any(name in limits.fields for name in fields):  # most operations: nothing to count
        return
    callers = _callers(ec.context)
    for name, count in fields.items():
        items = limits.fields.get(name)
        wait = await limits.spend(items, name, callers, count) if items else None
        if wait is not None:
            ec.result = ExecutionResult(data=None, errors=[_refusal(ec.context, wait)])
            break


def _limits(context: Any) -> RateLimits | None:
    services = getattr(context, "services", None)
    return getattr(services, "rate_limits", None)
