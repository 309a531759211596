"""GraphQL over HTTP as the specification and our clients read it.

- Media type: a client that prefers `application/graphql-response+json` gets it, with
  the specification's status codes (400 when the document did not parse, validate or
  coerce its variables, and no `data` entry then); others get `application/json`,
  200, as before. PERSISTED_QUERY_NOT_FOUND stays 200 `application/json` whatever was
  asked, so that Apollo's persisted-query link falls back to sending the text.
- Caching: a GET naming a trusted document whose root fields need no token (the
  program, the catalogue, the stores) and sent without a token is the same for
  everyone: `Cache-Control: public`, a weak ETag, 304 on `If-None-Match`. Everything
  else is `no-store`: member data never sits in a shared cache.
"""

from __future__ import annotations

import hashlib
from typing import Any

from strawberry.types import ExecutionResult

from api.documents import NOT_FOUND, Chosen

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
PUBLIC_MAX_AGE_SECONDS = 300


def prefers_graphql_response(accept: str | None) -> bool:
    """Whether the Accept header ranks graphql-response+json at least as high as json."""
    if not accept:
        return False
    best: dict[str, float] = {}
    for part in accept.split(",")[:32]:  # attacker-sized header: look at a bounded number
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        best[media] = max(best.get(media, 0.0), quality)
    ours = best.get(GRAPHQL_RESPONSE, 0.0)
    return ours > 0 and ours >= max(best.get(JSON, 0.0), best.get("application/*", 0.0), best.get("*/*", 0.0))


def is_request_error(result: ExecutionResult) -> bool:
    """No execution happened: the document did not parse or validate, its variables did
    not coerce, or it was refused before running (price, rate, trust). Field errors
    carry a path; these do not."""
    return result.data is None and bool(result.errors) and all(not e.path for e in result.errors)


def _code(result: ExecutionResult) -> str | None:
    if not result.errors:
        return None
    return (result.errors[0].extensions or {}).get("code")


def shape(request: Any, sub_response: Any, result: ExecutionResult, chosen: Chosen | None) -> None:
    """Decide the media type, status and caching of the answer (read by `respond`)."""
    sub_response.request_error = False
    sub_response.graphql_media = JSON
    if _code(result) == NOT_FOUND:
        return
    if prefers_graphql_response(request.headers.get("accept")):
        sub_response.graphql_media = GRAPHQL_RESPONSE
        if is_request_error(result):
            sub_response.request_error = True
            sub_response.status_code = sub_response.status_code or 400
    cacheable = (
        request.method == "GET"
        and chosen is not None
        and chosen.trusted is not None
        and chosen.trusted.public
        and not result.errors
        and "authorization" not in request.headers
    )
    sub_response.if_none_match = request.headers.get("if-none-match") if cacheable else None
    sub_response.cacheable = cacheable
    sub_response.headers["cache-control"] = f"public, max-age={PUBLIC_MAX_AGE_SECONDS}" if cacheable else "no-store"


def etag(body: bytes) -> str:
    # Weak: the same answer may travel compressed or not.
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    if not if_none_match:
        return False
    given = [t.strip() for t in if_none_match.split(",")[:32]]
    return "*" in given or tag in given or tag.removeprefix("W/") in given
