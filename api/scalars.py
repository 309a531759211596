"""Scalars whose parsing is ours, not the library's."""

from __future__ import annotations

import decimal
import re

from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

# What a till or a form sends: ASCII digits, an optional sign and fraction. Python's
# Decimal() would also read "10_000", fullwidth digits, " 10 ", "NaN" and "1e9".
_PLAIN = re.compile(r"-?[0-9]{1,64}(?:\.[0-9]{1,64})?")


def parse_decimal(value: object) -> decimal.Decimal:
    # A JSON number is read as the text it was written as: 12.5, not 12.5's binary neighbour.
    given = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if not isinstance(given, str) or not _PLAIN.fullmatch(given):
        raise GraphQLError("Decimal: use a plain decimal such as 12.50 (ASCII digits, one optional dot).")
    return decimal.Decimal(given)


PlainDecimal = ScalarDefinition(
    name="Decimal",
    description="Decimal (fixed-point)",
    specified_by_url=None,
    serialize=str,
    parse_value=parse_decimal,
    parse_literal=None,
    origin=decimal.Decimal,
)
