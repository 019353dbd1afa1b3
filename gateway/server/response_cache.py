"""The optional response cache: short-lived answers to GET and APQ operations, per token."""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from gateway.bounded import ByteLRU


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
    """An in-process cache bounded by bytes and entries, with per-entry expiry; the default
    without Redis. Each write first sweeps the entries that have expired, oldest first."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.entries: ByteLRU[tuple[float, bytes]] = ByteLRU(max_bytes, max_entries)
        self.clock = clock
        self._expiries: list[tuple[float, str]] = []  # a heap: the next entry to expire first

    async def get(self, key: str) -> bytes | None:
        entry = self.entries.get(key)
        if entry is None:
            return None
        expires, body = entry
        if expires <= self.clock():
            self.entries.pop(key)
            return None
        return body

    async def put(self, key: str, body: bytes, ttl: float) -> None:
        now = self.clock()
        self.sweep(now)
        expires = now + ttl
        if self.entries.put(key, (expires, body), len(body) + len(key) + _ENTRY_OVERHEAD):
            heapq.heappush(self._expiries, (expires, key))

    def sweep(self, now: float) -> None:
        """Drop every entry whose time is up (the heap may name entries already gone)."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expires, key = heapq.heappop(expiries)
            entry = self.entries.peek(key)
            if entry is not None and entry[0] == expires:
                self.entries.pop(key)
        if len(expiries) > 2 * self.max_entries:
            # Entries evicted by size leave stale heap items behind: rebuild from what is kept.
            live = ((self.entries.peek(k), k) for _, k in expiries)
            self._expiries = [(e[0], k) for e, k in live if e is not None]
            heapq.heapify(self._expiries)


_ENTRY_OVERHEAD = 200
