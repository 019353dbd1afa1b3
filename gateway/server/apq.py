"""Automatic persisted queries (Apollo's APQ protocol): documents stored by their SHA-256."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Protocol

from gateway.bounded import ByteLRU
from gateway.errors import ErrorCode, request_error

_SHA256 = re.compile(r"[0-9a-f]{64}")


class DocumentStore(Protocol):
    async def get(self, digest: str) -> str | None: ...

    async def put(self, digest: str, query: str) -> None: ...


class MemoryDocumentStore:
    """An LRU of documents bounded by bytes and entries, the default store of one process."""

    def __init__(self, max_entries: int, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.documents: ByteLRU[str] = ByteLRU(max_bytes, max_entries)

    async def get(self, digest: str) -> str | None:
        return self.documents.get(digest)

    async def put(self, digest: str, query: str) -> None:
        # The text, its key and the dict slot; str of ASCII costs a byte per character.
        self.documents.put(digest, query, len(query) + _ENTRY_OVERHEAD)


_ENTRY_OVERHEAD = 200


def persisted_hash(extensions: Any) -> str | None:
    """The requested SHA-256 hash, if the request uses APQ; malformed use is a request error."""
    if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        raise request_error(
            "Unsupported persistedQuery version; use 1.", ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise request_error(
            "persistedQuery.sha256Hash must be 64 lowercase hex digits.", ErrorCode.BAD_REQUEST
        )
    return digest


async def resolve_query(store: DocumentStore, query: str | None, digest: str) -> str:
    """The document for an APQ request: checked against its hash when sent along (the caller
    registers it once it validates, so junk cannot evict good entries), looked up when not."""
    if query is not None:
        if hashlib.sha256(query.encode()).hexdigest() != digest:
            raise request_error(
                "The query does not match its sha256Hash.", ErrorCode.PERSISTED_QUERY_HASH_MISMATCH
            )
        return query
    stored = await store.get(digest)
    if stored is None:
        # Apollo clients answer this by sending the query along with the hash; 200 keeps
        # every APQ client happy (Apollo Server answers the same way).
        raise request_error("PersistedQueryNotFound", ErrorCode.PERSISTED_QUERY_NOT_FOUND, 200)
    return stored
