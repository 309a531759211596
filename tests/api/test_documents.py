"""Trusted documents: the manifest `loyalty documents` writes, and what a server
accepts when it loads one (every entry checked at load, not when it runs)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse

from api.cli import parser
from api.documents import ManifestError, TrustedDocuments, manifest_of
from api.schema import build_schema

APP = """
query Me { me { ...MemberFields } }
fragment MemberFields on Member { id ...Names }
fragment Names on Member { displayName memberNumber }
query Card { memberCard { qrPayload } }
"""


@pytest.fixture(scope="module")
def graphql_schema():
    return build_schema(production=False)._schema


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_each_operation_becomes_one_document_with_the_fragments_it_uses(tmp_path):
    manifest = manifest_of([_write(tmp_path, "app.graphql", APP)])

    assert len(manifest) == 2
    for key, text in manifest.items():
        assert key == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
        operations = [d for d in parse(text).definitions if isinstance(d, OperationDefinitionNode)]
        assert len(operations) == 1
    by_name = {parse(t).definitions[0].name.value: t for t in manifest.values()}
    # Names is used only through MemberFields: included all the same, once.
    assert "fragment MemberFields" in by_name["Me"] and by_name["Me"].count("fragment Names") == 1
    assert "fragment" not in by_name["Card"]


def test_fragments_may_live_in_another_file(tmp_path):
    ops = _write(tmp_path, "ops.graphql", "query Me { me { ...F } }")
    frags = _write(tmp_path, "frags.graphql", "fragment F on Member { id }")
    (text,) = manifest_of([ops, frags]).values()
    assert "fragment F on Member" in text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("query Me { me { ...Missing } }", "uses fragment Missing, defined nowhere"),
        ("{ me { id } }", "every operation needs a name"),
        ("query Me { me { id } } query Me { me { displayName } }", "operation Me is also in"),
        ("query Me { me { id }", "Syntax Error"),
    ],
)
def test_bad_document_files_are_refused_with_the_reason(tmp_path, text, reason):
    with pytest.raises(ManifestError, match=reason):
        manifest_of([_write(tmp_path, "bad.graphql", text)])


def test_the_cli_writes_the_manifest_and_refuses_bad_files_in_one_line(tmp_path, capsys):
    source = _write(tmp_path, "app.graphql", APP)
    out = tmp_path / "manifest.json"
    args = parser().parse_args(["documents", str(source), "--out", str(out)])
    assert args.func(args) == 0
    assert json.loads(out.read_text()) == manifest_of([source])
    assert capsys.readouterr().err == f"2 documents written to {out}\n"

    bad = _write(tmp_path, "bad.graphql", "query X { me { ...Nope } }")
    args = parser().parse_args(["documents", str(bad)])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {bad}: operation X uses fragment Nope, defined nowhere"]


def test_a_loaded_manifest_finds_documents_by_either_form_of_id(tmp_path, graphql_schema):
    manifest = manifest_of([_write(tmp_path, "app.graphql", APP)])
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))

    trusted = TrustedDocuments.load([path], graphql_schema)

    assert len(trusted) == 2
    for key, text in manifest.items():
        document = trusted.get(key)
        assert document is not None and document.text == text
        assert trusted.get(key.removeprefix("sha256:").upper()) is document  # Apollo sends bare hex
        assert trusted.of_text(text) is document
    for unknown in ["sha256:" + "0" * 64, "sha256:xyz", "", "0" * 63, "sha1:" + "0" * 64]:
        assert trusted.get(unknown) is None


def test_apollo_persisted_query_manifests_load_too(tmp_path, graphql_schema):
    body = "query Card { memberCard { qrPayload } }"
    digest = hashlib.sha256(body.encode()).hexdigest()
    path = tmp_path / "apollo.json"
    path.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": digest, "name": "Card", "type": "query", "body": body}],
            }
        )
    )
    trusted = TrustedDocuments.load([path], graphql_schema)
    assert trusted.get(digest).operation_names == ["Card"]


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ({"sha256:" + hashlib.sha256(b"query Z { nope }").hexdigest(): "query Z { nope }"}, r"\(Z\) does not validate"),
        ({"sha256:" + "a" * 64: "query Me { me { id } }"}, "the key is not the SHA-256 of its document"),
        ({"md5:abc": "query Me { me { id } }"}, "the key is not"),
        ({"sha256:" + hashlib.sha256(b"query {").hexdigest(): "query {"}, "Syntax Error"),
        (["query Me { me { id } }"], "a manifest is a JSON object"),
    ],
)
def test_a_manifest_entry_that_does_not_validate_stops_the_load_naming_it(tmp_path, graphql_schema, entries, reason):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(ManifestError, match=reason) as caught:
        TrustedDocuments.load([path], graphql_schema)
    assert str(path) in str(caught.value)
