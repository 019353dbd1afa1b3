"""Trusted documents: the operations a manifest lists, served by hash and optionally the only ones.

The manifest (`persisted_documents`) is Apollo's `apollo-persisted-query-manifest` (as written
by `@apollo/generate-persisted-query-manifest`) or a plain `{"<sha256>": "<document>"}` map.
Clients name a listed document by `extensions.persistedQuery.sha256Hash` (APQ's field) or by
`documentId: "sha256:<hash>"` (the GraphQL-over-HTTP persisted-documents draft). With
`persisted_only`, any other document is refused before it is parsed.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import ErrorCode, request_error

_SHA256 = re.compile(r"[0-9a-f]{64}")
APOLLO_FORMAT = "apollo-persisted-query-manifest"


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def parse_manifest(data: Any) -> dict[str, str]:
    """The manifest's documents by SHA-256; a malformed manifest or a wrong hash is refused."""
    if isinstance(data, dict) and data.get("format") == APOLLO_FORMAT:
        if data.get("version") != 1 or not isinstance(data.get("operations"), list):
            raise ValueError(f"{APOLLO_FORMAT}: expected version 1 and a list of operations")
        pairs = [(op.get("id"), op.get("body")) if isinstance(op, dict) else (None, None)
                 for op in data["operations"]]  # fmt: skip
    elif isinstance(data, dict):
        pairs = list(data.items())
    else:
        raise ValueError("a persisted-documents manifest is a JSON object")
    documents: dict[str, str] = {}
    for digest, body in pairs:
        if not isinstance(digest, str) or not isinstance(body, str):
            raise ValueError("every manifest entry needs a string id and a string document")
        if not _SHA256.fullmatch(digest) or sha256(body) != digest:
            raise ValueError(f"manifest entry {digest[:80]!r} is not the SHA-256 of its document")
        documents[digest] = body
    return documents


class TrustedDocuments:
    """The listed documents of one app, loaded once at start (a bad manifest fails the start)."""

    def __init__(self, documents: dict[str, str], *, only: bool) -> None:
        self.documents = documents
        self.only = only

    @classmethod
    def load(cls, path: str, *, only: bool) -> TrustedDocuments:
        if not path:
            return cls({}, only=only)
        try:
            data = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"persisted_documents: cannot read {path}: {exc}") from None
        try:
            return cls(parse_manifest(data), only=only)
        except ValueError as exc:
            raise ValueError(f"persisted_documents ({path}): {exc}") from None

    def get(self, digest: str) -> str | None:
        return self.documents.get(digest)

    def by_document_id(self, document_id: str) -> tuple[str, str]:
        """The (hash, document) a `documentId` names; unknown or malformed ids are refused."""
        scheme, _, digest = document_id.partition(":")
        if scheme != "sha256" or not _SHA256.fullmatch(digest):
            raise request_error(
                '`documentId` must be "sha256:" and 64 lowercase hex digits.', ErrorCode.BAD_REQUEST
            )
        document = self.documents.get(digest)
        if document is None:
            raise request_error(
                "No persisted document has this documentId.", ErrorCode.PERSISTED_QUERY_NOT_FOUND
            )
        return digest, document

    def check_allowed(self, query: str) -> None:
        """With `only`, a document sent in full must be one of the listed ones (before parsing)."""
        if self.only and sha256(query) not in self.documents:
            raise request_error(
                "Only persisted documents are accepted here: send a listed document's hash.",
                ErrorCode.PERSISTED_QUERY_REQUIRED,
            )
