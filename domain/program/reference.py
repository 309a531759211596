"""The program file's reference page, generated from the model's own descriptions and
examples (config.py), so that the page cannot drift from what is validated:

    python -m domain.program.reference > docs/program.md

tests/domain/program/test_program_reference.py fails when the committed page differs."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from domain.program.config import Program

INTRO = """# The program file

The program file says how the loyalty program works: its currency and time zone, how
purchases earn points, when points expire, the tiers, bonuses, cashback, the push policy
and the stores. It is TOML; `LOYALTY_PROGRAM` points at it (unset: the demo program,
[`domain/program/demo.toml`](../domain/program/demo.toml), a good start to copy). It is
validated when `loyalty serve` or `loyalty worker` starts: unknown keys are refused, and
an error names the file, the key and what is wrong:

    error: program.toml: tiers[1].threshold: must be greater than the previous tier's (1000)

Keys are written with their full path: `stores[].key` is `key` in each `[[stores]]`
table, `activities.<activity>.points` is `points` in `[activities]`' entry for one
activity. A type's bounds are inclusive unless marked `>` or `<`. Each section ends with
an example; together, the examples make a valid program file.

This page is generated from the descriptions in `domain/program/config.py`: change them
there, then run `python -m domain.program.reference > docs/program.md`. A test fails
when the page is out of date.
"""


@dataclass
class Row:
    key: str
    type: str
    default: str
    meaning: str
    example: str


@dataclass
class Section:
    heading: str  # the TOML header this section's keys live under
    about: str
    rows: list[Row] = field(default_factory=list)
    example: list[str] = field(default_factory=list)  # TOML lines


def toml(value: Any) -> str:
    """A value as it is written in the program file."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, BaseModel):
        return toml(value.model_dump(mode="python"))
    raise TypeError(f"no TOML form for {value!r}")


def _bounds(metadata: list, unit: str) -> list[str]:
    out = []
    for m in metadata:
        if isinstance(m, FieldInfo):
            out += _bounds(m.metadata, unit)
        for attr, sign in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(m, getattr(annotated_types, attr.capitalize())):
                out.append(f"{sign} {getattr(m, attr)}")
        if isinstance(m, annotated_types.MinLen):
            out.append(f"at least {m.min_length} {unit if m.min_length != 1 else unit[:-1]}")
        if isinstance(m, annotated_types.MaxLen):
            out.append(f"at most {m.max_length} {unit}")
        if getattr(m, "pattern", None):
            out.append(f"matching `{m.pattern}`")
    return out


def _nested(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model a field holds, and how it is reached: "" (a table), "[]" (an array of
    tables) or ".<activity>" (a table of tables keyed by name)."""
    if get_origin(annotation) is Annotated:
        return _nested(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if get_origin(annotation) is list:
        inner = _nested(get_args(annotation)[0])
        return (inner[0], "[]") if inner else None
    if get_origin(annotation) is dict:
        inner = _nested(get_args(annotation)[1])
        return (inner[0], ".<activity>") if inner else None
    return None


def type_text(annotation: Any, metadata: list | None = None) -> str:
    origin = get_origin(annotation)
    bounds = _bounds(metadata or [], "items" if origin is list else "characters")
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return type_text(inner, [*extra, *(metadata or [])])
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in get_args(annotation) if a is not type(None)]
        return type_text(inner, metadata)
    if origin is Literal:
        text = "one of " + ", ".join(f"`{toml(a)}`" for a in get_args(annotation))
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        text = "one of " + ", ".join(f"`{toml(m)}`" for m in annotation)
    elif origin is list and _nested(annotation):
        text = "array of tables"
    elif origin is list:
        text = "list of " + type_text(get_args(annotation)[0])
    elif origin is dict:
        text = "table keyed by " + ", ".join(f"`{k}`" for k in get_args(get_args(annotation)[0]))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = "table"
    else:
        names = {bool: "boolean", int: "integer", float: "number", Decimal: "decimal number", str: "string"}
        names |= {date: "date (`YYYY-MM-DD`)", time: "time of day (`HH:MM:SS`)"}
        text = names[annotation]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    if value in ([], {}):
        return "none"
    return f"`{toml(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def sections(model: type[BaseModel] = Program, path: str = "", heading: str = "Top level") -> list[Section]:
    doc = " ".join((model.__doc__ or "").split())
    section = Section(heading, doc)
    below: list[Section] = []
    for name, info in model.model_fields.items():
        key = f"{path}{name}"
        nested = _nested(info.annotation)
        if nested:
            sub, reach = nested
            header = f"[[{key}]]" if reach == "[]" else f"[{key}{reach}]"
            example = "see below"
            below += sections(sub, f"{key}{reach}.", header)
        else:
            example = f"`{toml(info.examples[0])}`" if info.examples else ""
            if info.examples:
                section.example.append(f"{name} = {toml(info.examples[0])}")
        row = Row(key, type_text(info.annotation, info.metadata), _default(info), info.description or "", example)
        section.rows.append(row)
    return [section, *below]


def _header_line(heading: str) -> str | None:
    """The TOML header for a section's example ("[activities.survey]" for the map)."""
    if heading == "Top level":
        return None
    return heading.replace("<activity>", "survey")


def render() -> str:
    out = [INTRO]
    for section in sections():
        title = section.heading if section.heading == "Top level" else f"`{section.heading}`"
        out.append(f"## {title}\n")
        if section.about:
            out.append(section.about + "\n")
        out.append("| key | type | default | meaning | example |")
        out.append("| --- | --- | --- | --- | --- |")
        for r in section.rows:
            cells = (f"`{r.key}`", r.type, r.default, r.meaning, r.example)
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        if section.example:
            header = _header_line(section.heading)
            out.append("\n```toml")
            out += [header] if header else []
            out += section.example
            out.append("```")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
