"""The optional response cache: short-lived answers to GET and APQ operations, per token."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson


class ResponseCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, body: bytes, ttl: float) -> None: ...


def cache_key(
    authorization: str | None, query: str, variables: Any, operation_name: str | None
) -> str:
    """A digest of the credentials with the operation, so no entry is ever shared by tokens."""
    digest = hashlib.sha256()
    for part in (
        authorization or "",
        query,
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode(),
        operation_name or "",
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class MemoryResponseCache:
    """A bounded in-process cache with per-entry expiry; the default without Redis."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, body = entry
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        return body

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        self._entries[key] = (time.monotonic() + ttl, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
