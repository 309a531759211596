"""How failures reach clients.

- Domain failures become `userErrors { code message field }` in the payload.
- Auth failures and malformed requests are top-level errors with `extensions.code`.
- Anything else is masked as "Unexpected error." and logged with the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from enum import Enum

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
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


@strawberry.enum(description="Why a mutation did not do what was asked: one list for every payload.")
class ErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    ALREADY_REDEEMED = "ALREADY_REDEEMED"
    EXPIRED = "EXPIRED"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    UNAUTHENTICATED = strawberry.enum_value("UNAUTHENTICATED", description="A refused sign-in or refresh token.")


@strawberry.type(description="A reason the mutation did not do what was asked.")
class UserError:
    code: ErrorCode = strawberry.field(description="Stable: switch on it.")
    message: str = strawberry.field(description="For people; may change between releases.")
    field: str | None = strawberry.field(description="The input field at fault, if one is.")

    @classmethod
    def of(cls, error: DomainError) -> list[UserError]:
        try:
            code = ErrorCode(error.code)
        except ValueError:
            # A domain code the enum lacks is our bug (a test guards it): answer, don't fail.
            log.error("domain code %s is not in ErrorCode", error.code)
            code = ErrorCode.INVALID_INPUT
        return [cls(code=code, message=error.message, field=error.field)]


# Top-level errors that no resolver raised: what the client got wrong, by phase.
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
# Variables that do not fit their types (Apollo's name, which its clients know).
BAD_USER_INPUT = "BAD_USER_INPUT"


def _tag(errors: list[GraphQLError] | None, code: str) -> None:
    for error in errors or ():
        if not (error.extensions or {}).get("code"):
            error.extensions = {**(error.extensions or {}), "code": code}


def code_validation_errors(errors: list[GraphQLError] | None) -> None:
    """Gives validation errors their code as the phase ends (nothing else tells them
    apart from variable errors later: neither has a cause or a path)."""
    _tag(errors, VALIDATION_FAILED)


def give_codes(errors: list[GraphQLError]) -> None:
    """Every other error the client sees gets a code too: a domain failure its own
    (subscriptions included, e.g. a bad `after` cursor), a syntax error (the token
    limit's too) GRAPHQL_PARSE_FAILED, and an error outside any field that nothing else
    coded (variables that do not coerce) BAD_USER_INPUT. Unexpected ones are masked later."""
    for error in errors:
        cause = error.original_error
        if isinstance(cause, DomainError):
            _tag([error], cause.code)
        elif isinstance(error, GraphQLSyntaxError):
            _tag([error], PARSE_FAILED)
        elif (cause is None or isinstance(cause, GraphQLError)) and not error.path:
            _tag([error], BAD_USER_INPUT)


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

    def _process_result(self, result: object) -> None:
        # strawberry's checks a runtime Protocol with isinstance: ~2 % of a small query's CPU.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)

    def on_operation(self) -> Iterator[None]:
        self._stream_result_processed = False
        yield
        self.finish()

    def finish(self) -> None:
        """As the operation ends: mask (unless each streamed result was masked already),
        and a domain error escaping a resolver becomes a top-level error with its code."""
        if not self._stream_result_processed:
            result = self.execution_context.result
            self._process_result(getattr(result, "initial_result", None) or result)
        _code_domain_errors(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        # The same for each result of a subscription (a bad `after` cursor, say).
        _code_domain_errors(result)
        yield from super().on_stream_result(result)


def _code_domain_errors(result: object) -> None:
    for error in getattr(result, "errors", None) or ():
        if isinstance(error.original_error, DomainError) and not error.extensions:
            error.extensions = {"code": error.original_error.code}
