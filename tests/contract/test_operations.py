"""The client contract: every document in ../shared/contract/operations/ must be
accepted by our schema as written. Documents whose features land in later issues
are expected to fail until then (strict: once one validates, move it to REQUIRED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import parse, validate
from graphql.language import FragmentDefinitionNode, OperationDefinitionNode

from api.schema import build_schema
from tests.conftest import CONTRACT

OPERATIONS_DIR = Path(os.environ.get("LOYALTY_CONTRACT_DIR", CONTRACT)) / "operations"

# Operations whose every field exists by now; this set only grows.
REQUIRED = {"EnrollMember", "LookupMember", "Me", "MemberCard", "UpdatePreferences"}


def _documents() -> dict[str, tuple[Path, str]]:
    """Operation name -> (file, the operation's text with the fragments it uses)."""
    out = {}
    for path in sorted(OPERATIONS_DIR.glob("*.graphql")):
        text = path.read_text()
        doc = parse(text)
        fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
        for definition in doc.definitions:
            if isinstance(definition, OperationDefinitionNode):
                body = text[definition.loc.start:definition.loc.end]
                used = [text[f.loc.start:f.loc.end] for name, f in fragments.items() if f"...{name}" in body]
                out[definition.name.value] = (path, "\n".join([body, *used]))
    return out


DOCUMENTS = _documents()
SCHEMA = build_schema()._schema


def test_the_contract_is_there():
    assert OPERATIONS_DIR.is_dir(), f"contract operations not found at {OPERATIONS_DIR}"
    assert REQUIRED <= set(DOCUMENTS), REQUIRED - set(DOCUMENTS)


@pytest.mark.parametrize(
    "name",
    [
        n if n in REQUIRED else pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="a later issue"))
        for n in sorted(DOCUMENTS)
    ],
)
def test_operation_validates_against_the_schema(name: str):
    path, text = DOCUMENTS[name]
    errors = validate(SCHEMA, parse(text))
    assert not errors, f"{path.name}: {name}: {[e.message for e in errors]}"
