"""An LRU bounded by bytes (and by entries): the one store under every in-process cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remember(table: dict[K, V], key: K, make: Callable[[], V], limit: int) -> V:
    """`table[key]`, made once and kept while `table` has fewer than `limit` entries; a key that
    cannot be hashed (a list in the variables) is made for this call only. For small
    per-operation tables whose owner is itself bounded by bytes (the document cache)."""
    try:
        return table[key]
    except KeyError:
        pass
    except TypeError:
        return make()
    value = make()
    if len(table) < limit:
        table[key] = value
    return value


class ByteLRU(Generic[V]):
    """Least recently used entries leave first once the charged bytes or the entries pass
    their bound; an entry larger than the whole budget is never kept."""

    def __init__(self, max_bytes: int, max_entries: int) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.nbytes = 0
        self._entries: OrderedDict[str, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def peek(self, key: str) -> V | None:
        """The value without making it recently used."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: str, value: V, nbytes: int) -> bool:
        """Store `value` charged `nbytes`; False when it is too large to keep at all."""
        self.pop(key)
        if nbytes > self.max_bytes:
            return False
        self._entries[key] = (value, nbytes)
        self.nbytes += nbytes
        self._evict()
        return True

    def charge(self, key: str, nbytes: int) -> None:
        """Add `nbytes` to an entry that grew (e.g. a compiled variant); it may evict others."""
        entry = self._entries.get(key)
        if entry is None:
            return
        self._entries[key] = (entry[0], entry[1] + nbytes)
        self.nbytes += nbytes
        self._evict()

    def pop(self, key: str) -> V | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self.nbytes -= entry[1]
        return entry[0]

    def _evict(self) -> None:
        while self._entries and (
            self.nbytes > self.max_bytes or len(self._entries) > self.max_entries
        ):
            _, (_, nbytes) = self._entries.popitem(last=False)
            self.nbytes -= nbytes
