"""Trusted documents (persisted operations): the documents the apps were built with.

- `manifest_of(paths)` turns `.graphql` files into the manifest the contract fixes:
  `{"sha256:<hex of the text>": "<text>"}`, one executable document per operation
  (the operation and every fragment it uses, transitively).
- `TrustedDocuments.load(paths, schema)` reads manifests (ours, graphql-codegen's
  client preset with `persistedDocuments`, or Apollo's persisted-query manifest),
  and parses and validates every entry once, at start: a bad entry stops the start
  with its name and the reason, and running a trusted document costs no parse or
  validation afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationType, parse, specified_rules, validate
from graphql.language import FragmentDefinitionNode, FragmentSpreadNode, OperationDefinitionNode, Visitor, visit

from api.limits import root_fields

ID_PREFIX = "sha256:"
# Where the view carries a request's `documentId` (in its extensions, beside Apollo's).
DOCUMENT_ID = "documentId"
_HEX = frozenset("0123456789abcdef")


class ManifestError(Exception):
    """A document file or manifest that cannot be used; the message names it and why."""


def document_id(text: str) -> str:
    return ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def _hex_of(given: str) -> str | None:
    """`sha256:<hex>` (the contract) or bare hex (Apollo's persistedQuery) → the hex."""
    hexdigest = given.removeprefix(ID_PREFIX).lower()
    return hexdigest if len(hexdigest) == 64 and set(hexdigest) <= _HEX else None


# --- writing a manifest (`loyalty documents`) -------------------------------------


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args) -> None:
        if node.name.value not in self.names:
            self.names.append(node.name.value)


def _spreads(node) -> list[str]:
    spreads = _Spreads()
    visit(node, spreads)
    return spreads.names


def _read(path: Path) -> tuple[str, DocumentNode]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read it ({exc})") from None
    try:
        return text, parse(text)
    except GraphQLError as exc:
        raise ManifestError(f"{path}: {exc.message} at {exc.locations}") from None


def manifest_of(paths: Iterable[Path]) -> dict[str, str]:
    """Every named operation in `paths`, each with the fragments it uses (from any of
    the files), keyed by the SHA-256 of its text."""
    return {document_id(text): text for _, text in operations_of(paths).values()}


def operations_of(paths: Iterable[Path]) -> dict[str, tuple[Path, str]]:
    """Operation name -> (its file, one executable document: the operation and every
    fragment it uses, transitively, from any of the files)."""
    operations: dict[str, tuple[Path, str, OperationDefinitionNode]] = {}
    fragments: dict[str, tuple[str, FragmentDefinitionNode]] = {}
    for path in paths:
        text, document = _read(path)
        for definition in document.definitions:
            source = text[definition.loc.start : definition.loc.end]
            if isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in fragments and fragments[name][0] != source:
                    raise ManifestError(f"{path}: fragment {name} is defined twice, differently")
                fragments[name] = (source, definition)
            elif isinstance(definition, OperationDefinitionNode):
                if definition.name is None:
                    raise ManifestError(f"{path}: every operation needs a name (clients refer to it)")
                name = definition.name.value
                if name in operations:
                    raise ManifestError(f"{path}: operation {name} is also in {operations[name][0]}")
                operations[name] = (path, source, definition)

    documents = {}
    for name, (path, source, definition) in operations.items():
        parts, pending, seen = [source], _spreads(definition), set()
        while pending:
            fragment = pending.pop(0)
            if fragment in seen:
                continue
            seen.add(fragment)
            if fragment not in fragments:
                raise ManifestError(f"{path}: operation {name} uses fragment {fragment}, defined nowhere")
            parts.append(fragments[fragment][0])
            pending.extend(_spreads(fragments[fragment][1]))
        documents[name] = (path, "\n\n".join(parts) + "\n")
    return documents


# --- serving them ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrustedDocument:
    id: str  # sha256:<hex>
    text: str
    document: DocumentNode  # parsed and validated at load
    # A query of root fields that need no token (the program, the catalogue, the
    # stores): the same answer for everyone, so it may be cached by GET.
    public: bool = field(default=False)

    @property
    def operation_names(self) -> list[str]:
        return [d.name.value for d in self.document.definitions if isinstance(d, OperationDefinitionNode) and d.name]


def _entries(path: Path, data: object) -> Mapping[str, str]:
    """Our manifest and graphql-codegen's are `{id: text}`; Apollo's is
    `{"format": "apollo-persisted-query-manifest", "operations": [{id, body}]}`."""
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        operations = data.get("operations")
        if not isinstance(operations, list) or not all(
            isinstance(o, dict) and isinstance(o.get("id"), str) and isinstance(o.get("body"), str) for o in operations
        ):
            raise ManifestError(f"{path}: an Apollo manifest needs operations with an id and a body")
        return {o["id"]: o["body"] for o in operations}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ManifestError(f'{path}: a manifest is a JSON object of "sha256:<hex>": "<document>"')
    return data


class TrustedDocuments:
    """The documents a server accepts by id, each parsed and validated once."""

    def __init__(self, documents: Iterable[TrustedDocument] = ()) -> None:
        self._by_hex = {d.id.removeprefix(ID_PREFIX): d for d in documents}
        self._by_text = {d.text: d for d in self._by_hex.values()}

    @classmethod
    def load(cls, paths: Iterable[Path], schema: GraphQLSchema, rules: Iterable[Any] = ()) -> TrustedDocuments:
        """`rules`: validation rules the server adds to the specification's (limits, no
        introspection in production), so a trusted document passes what any would."""
        rules = [*specified_rules, *rules]
        documents = []
        for path in paths:
            try:
                data = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ManifestError(f"{path}: cannot read it as JSON ({exc})") from None
            for key, text in _entries(path, data).items():
                documents.append(_checked(path, key, text, schema, rules))
        return cls(documents)

    def __len__(self) -> int:
        return len(self._by_hex)

    def get(self, given: str) -> TrustedDocument | None:
        """By `sha256:<hex>` or bare hex; None for anything else or an unknown id."""
        hexdigest = _hex_of(given) if isinstance(given, str) else None
        return self._by_hex.get(hexdigest) if hexdigest else None

    def of_text(self, text: str) -> TrustedDocument | None:
        return self._by_text.get(text)


def _checked(path: Path, key: str, text: str, schema: GraphQLSchema, rules: list[Any]) -> TrustedDocument:
    hexdigest = _hex_of(key)
    if hexdigest is None:
        raise ManifestError(f'{path}: entry {key[:80]!r}: the key is not "sha256:<64 hex digits>"')
    if hashlib.sha256(text.encode()).hexdigest() != hexdigest:
        raise ManifestError(f"{path}: entry {key}: the key is not the SHA-256 of its document")
    name = key
    try:
        document = parse(text)
        names = [d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name]
        name = f"{key} ({', '.join(names) or 'anonymous'})"
        errors = validate(schema, document, rules)
    except GraphQLError as exc:
        raise ManifestError(f"{path}: entry {name}: {exc.message}") from None
    if errors:
        raise ManifestError(f"{path}: entry {name} does not validate: {errors[0].message}")
    return TrustedDocument(id=ID_PREFIX + hexdigest, text=text, document=document, public=_public(schema, document))


def _public(schema: GraphQLSchema, document: DocumentNode) -> bool:
    """One query operation, every root field of it open to callers without a token."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    query_fields = schema.query_type.fields
    names = root_fields(document, None)
    return bool(names) and all(
        name != "__typename" and name in query_fields and not _permissions(query_fields[name]) for name in names
    )


def _permissions(graphql_field: Any) -> list:
    definition = (graphql_field.extensions or {}).get("strawberry-definition")
    return list(getattr(definition, "permission_classes", None) or [])


# --- what each request runs ----------------------------------------------------------

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"
MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
# Documents remembered from Apollo's automatic persisted queries (text and hash sent
# together, where text is allowed), by bytes of text.
REMEMBERED_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Chosen:
    """The text to run, and whether it is a trusted document (no parse, no validation)."""

    query: str | None
    trusted: TrustedDocument | None = None
    remember: str | None = None  # a hash to remember the text under once it validated


def _refused(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _persisted_hash(extensions: Any) -> str | GraphQLError | None:
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if persisted is None:
        return None
    given = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(given, str) or _hex_of(given) is None:
        return _refused("BAD_REQUEST", "extensions.persistedQuery.sha256Hash must be 64 hex digits.")
    return given


class DocumentGate:
    """Which document a request runs: named by `documentId` (the contract) or Apollo's
    `extensions.persistedQuery.sha256Hash`, or sent as text where the policy allows it.

    `mode` is LOYALTY_TRUSTED_ONLY: off, members (callers without a token or with a
    member token must name a trusted document) or all."""

    def __init__(self, trusted: TrustedDocuments, mode: str = "off") -> None:
        self.trusted = trusted
        self.mode = mode
        self._remembered: LRUCache[str, str] = LRUCache(maxsize=REMEMBERED_BYTES, getsizeof=len)

    def text_allowed(self, role: Any) -> bool:
        """`role` is the caller's Role, or None without a (valid) token."""
        if self.mode == "all":
            return False
        if self.mode == "members":
            return role is not None and role.value != "member"
        return True

    def choose(self, query: Any, document_id: Any, extensions: Any, role: Any) -> Chosen | GraphQLError:
        named = _persisted_hash(extensions)
        if isinstance(named, GraphQLError):
            return named
        if document_id is not None:
            if not isinstance(document_id, str) or _hex_of(document_id) is None:
                return _refused(NOT_FOUND, 'documentId is "sha256:" and 64 hex digits.')
            named = document_id
        if named is None:
            if query is not None and not self.text_allowed(role):
                return _refused(REQUIRED, "Send the id of a trusted document (documentId), not its text.")
            return Chosen(query)
        return self._named(query, named, role)

    def _named(self, query: Any, named: str, role: Any) -> Chosen | GraphQLError:
        hexdigest = _hex_of(named)
        assert hexdigest is not None
        if isinstance(query, str) and hashlib.sha256(query.encode()).hexdigest() != hexdigest:
            return _refused(MISMATCH, "The document's hash does not match its text.")
        document = self.trusted.get(hexdigest)
        if document is not None:
            return Chosen(document.text, trusted=document)
        if not self.text_allowed(role):
            if query is not None:
                return _refused(REQUIRED, "This document is not one of the trusted documents.")
            return _refused(NOT_FOUND, "PersistedQueryNotFound")
        if query is None:
            remembered = self._remembered.get(hexdigest)
            return Chosen(remembered) if remembered is not None else _refused(NOT_FOUND, "PersistedQueryNotFound")
        return Chosen(query, remember=hexdigest)

    def remember(self, hexdigest: str, text: str) -> None:
        """After the text validated: a later request may send the hash alone."""
        if len(text) <= self._remembered.maxsize:
            self._remembered[hexdigest] = text
