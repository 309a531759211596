"""How failures reach clients.

- Domain failures become `userErrors { code message field }` in the payload.
- Auth failures and malformed requests are top-level errors with `extensions.code`.
- Anything else is masked as "Unexpected error." and logged with the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types.execution import StreamExecutionResult

from domain.errors import DomainError

log = logging.getLogger("loyalty.api")


class ClientError(Exception):
    """A top-level GraphQL error the client is meant to see, with a stable code."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {"code": code or self.code}


class Unauthenticated(ClientError):
    code = "UNAUTHENTICATED"


class Forbidden(ClientError):
    code = "FORBIDDEN"


class BadRequest(ClientError):
    code = "INVALID_INPUT"


@strawberry.type(description="A reason the mutation did not do what was asked.")
class UserError:
    code: str = strawberry.field(description="Stable code: INVALID_INPUT, NOT_FOUND, ALREADY_EXISTS…")
    message: str = strawberry.field(description="For people; may change between releases.")
    field: str | None = strawberry.field(description="The input field at fault, if one is.")

    @classmethod
    def of(cls, error: DomainError) -> list[UserError]:
        return [cls(code=error.code, message=error.message, field=error.field)]


def _is_expected(error: GraphQLError) -> bool:
    """Errors meant for the client: syntax, validation and variable coercion
    (GraphQLError), our auth and request errors, and domain failures."""
    cause = error.original_error
    return cause is None or isinstance(cause, GraphQLError | ClientError | DomainError)


class MaskUnexpectedErrors(MaskErrors):
    """Masks what the client should not see and logs it with the request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda e: not _is_expected(e))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        request_id = getattr(self.execution_context.context, "request_id", None)
        log.error(
            "unexpected error (request %s) at %s",
            request_id,
            error.path,
            exc_info=error.original_error,
        )
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        return masked

    def on_operation(self) -> Iterator[None]:
        yield from super().on_operation()
        # A domain error escaping a resolver becomes a top-level error with its code.
        _code_domain_errors(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # The same for each result of a subscription (a bad `after` cursor, say).
        _code_domain_errors(result)
        yield from super().on_stream_result(result)


def _code_domain_errors(result: object) -> None:
    for error in getattr(result, "errors", None) or ():
        if isinstance(error.original_error, DomainError) and not error.extensions:
            error.extensions = {"code": error.original_error.code}
