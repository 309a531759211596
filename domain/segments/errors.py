"""Segment failures. A bad rule is INVALID_INPUT naming the rule (`rules[1].windowDays`)."""

from __future__ import annotations

from domain.errors import InvalidInput


class InvalidRule(InvalidInput):
    """A custom segment's rule that cannot be compiled: its message and field name the rule."""

    def __init__(self, index: int, kind: str, attribute: str | None, problem: str) -> None:
        where = f"rules[{index}]" + (f".{attribute}" if attribute else "")
        super().__init__(f"rules[{index}] ({kind}): {problem}", field=where)
