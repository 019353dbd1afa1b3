"""Pagination: turn Relay or page arguments into a window, and a window into upstream pages."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from dataclasses import dataclass

from gateway.errors import BadUserInput
from gateway.settings import Settings

logger = logging.getLogger("gateway.paging")

# Bumped whenever what a cursor means changes; older cursors are then refused, never misread.
CURSOR_VERSION = "1"
_MAX_OFFSET_DIGITS = 12


def _filter_tag(order_number: str | None) -> str:
    """A short digest of the filter a cursor belongs to (empty for the unfiltered list)."""
    if order_number is None:
        return ""
    return hashlib.blake2b(order_number.encode(), digest_size=6).hexdigest()


def encode_cursor(offset: int, order_number: str | None = None) -> str:
    """An opaque cursor for the item at `offset` of the list `order_number` filters.

    It depends on nothing but its arguments, so it stays valid across restarts and instances.
    """
    text = f"{CURSOR_VERSION}:{offset}:{_filter_tag(order_number)}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, argument: str = "after", order_number: str | None = None) -> int:
    """The offset a cursor names; refused when it is not ours or belongs to another query."""
    try:
        raw = cursor.encode("ascii")
        text = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    parts = text.split(":")
    if len(parts) == 3 and parts[0] != CURSOR_VERSION and parts[0].isdigit():
        raise BadUserInput(
            f"`{argument}` is a cursor of an older version of this API; start from the first page.",
            argument=argument,
        )
    if (
        len(parts) != 3
        or not parts[1].isdigit()
        or not parts[1].isascii()
        or len(parts[1]) > _MAX_OFFSET_DIGITS
    ):
        raise BadUserInput(f"`{argument}` is not a cursor this API issued.", argument=argument)
    if parts[2] != _filter_tag(order_number):
        raise BadUserInput(
            f"`{argument}` is a cursor of another query: use it with the same `orderNumber` "
            "it came with.",
            argument=argument,
        )
    return int(parts[1])


@dataclass(frozen=True, slots=True)
class Window:
    """The absolute range [offset, offset + size) of matching items a field asks for.

    With `from_end` (`last` without `before`), it is the last `size` items at or after `offset`,
    which only the total count can place.
    """

    offset: int
    size: int
    from_end: bool = False

    def settle(self, count: int) -> Window:
        """The absolute window once the total count is known."""
        if not self.from_end:
            return self
        start = max(self.offset, count - self.size)
        return Window(start, max(0, min(self.size, count - start)))


def _check_size(settings: Settings, size: int, argument: str) -> None:
    if size > settings.max_page_size:
        raise BadUserInput(
            f"At most {settings.max_page_size} items can be asked for at once; "
            f"ask for fewer and follow `pageInfo.endCursor`.",
            argument=argument,
            limit=settings.max_page_size,
        )


def resolve_window(
    settings: Settings,
    *,
    first: int | None,
    after: str | None,
    page: int | None,
    page_size: int | None,
    last: int | None = None,
    before: str | None = None,
    order_number: str | None = None,
) -> Window:
    """`first`/`pageSize` set the size and `after`/`page` the start; each pair must agree.

    Backward (Relay): `last` items that end just before `before`, or the end of the list when
    there is no `before`; `before` alone means `last` of the default page size.
    """
    for name, value in (("first", first), ("last", last)):
        if value is not None and value < 0:
            raise BadUserInput(f"`{name}` must not be negative.", argument=name)
    if page_size is not None and page_size < 1:
        raise BadUserInput("`pageSize` must be at least 1.", argument="pageSize")
    if page is not None and page < 1:
        raise BadUserInput("`page` starts at 1.", argument="page")
    if first is not None and last is not None:
        raise BadUserInput("Give `first` or `last`, not both.", argument="last")
    if (last is not None or before is not None) and (page is not None or page_size is not None):
        raise BadUserInput(
            "`last`/`before` page backward by cursor; they do not mix with `page`/`pageSize`.",
            argument="last" if last is not None else "before",
        )
    if first is not None and page_size is not None and first != page_size:
        raise BadUserInput(
            "`first` and `pageSize` both set the page size; give one, or the same value.",
            argument="first",
        )
    if after is not None and page is not None:
        raise BadUserInput(
            "`after` and `page` both set where the page starts; give only one.", argument="after"
        )
    start = decode_cursor(after, "after", order_number) + 1 if after is not None else 0
    end = decode_cursor(before, "before", order_number) if before is not None else None
    if last is not None or (before is not None and first is None):
        count = last if last is not None else settings.default_page_size
        _check_size(settings, count, "last")
        if end is None:
            return Window(start, count, from_end=True)
        offset = max(start, end - count)
        return Window(offset, max(0, end - offset))
    size = first if first is not None else page_size
    if size is None:
        size = settings.default_page_size
    _check_size(settings, size, "first" if first is not None else "pageSize")
    if page is not None:
        start = (page - 1) * size
    if end is not None:
        size = max(0, min(size, end - start))
    return Window(offset=start, size=size)


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Which upstream pages of `limit` items cover a window."""

    limit: int
    pages: tuple[int, ...]

    @property
    def first_offset(self) -> int:
        return (self.pages[0] - 1) * self.limit


# Only the count is wanted: one slim item tells it.
COUNT_PLAN = PagePlan(limit=1, pages=(1,))


def plan_pages(window: Window, max_limit: int) -> PagePlan:
    """The fewest upstream calls that cover the window, then the least over-fetch.

    The one page planner: the loaders fetch exactly these pages, and the call budget counts
    them. `max_limit` is the upstream's page cap as known now (see `PageCap`).
    """
    start, end = window.offset, window.offset + window.size
    if window.size == 0:
        return COUNT_PLAN
    if window.size <= max_limit and start % window.size == 0:
        return PagePlan(limit=window.size, pages=(start // window.size + 1,))
    best: tuple[int, int, int] | None = None
    for limit in range(1, max_limit + 1):
        calls = (end - 1) // limit - start // limit + 1
        candidate = (calls, calls * limit, limit)
        if best is None or candidate < best:
            best = candidate
    assert best is not None
    limit = best[2]
    first_page = start // limit + 1
    return PagePlan(limit=limit, pages=tuple(range(first_page, first_page + best[0])))


def probe_plan(window: Window, max_limit: int) -> PagePlan:
    """The first call of a `from_end` window: page 1 as large as the window (within the cap).

    It tells the count, and it is the whole answer when the list is no longer than the window
    (an order's items, typically); otherwise the window is planned once placed.
    """
    return PagePlan(limit=max(1, min(window.size, max_limit)), pages=(1,))


def unplaced_calls(window: Window, max_limit: int) -> int:
    """Calls a `from_end` window makes beyond its probe, at most, wherever the end is."""
    if not window.from_end or window.size == 0:
        return 0
    return (window.size - 1) // max_limit + 2


class PageCap:
    """The largest page the upstream really serves, learned from short pages.

    One per upstream per app: `upstream_max_limit` stays the ceiling, and a page shorter than
    asked (with more items to come) teaches a smaller cap that every later plan uses.
    """

    def __init__(self) -> None:
        self.learned: int | None = None

    def limit(self, ceiling: int) -> int:
        return ceiling if self.learned is None else min(ceiling, self.learned)

    def learn(self, served: int) -> None:
        if served >= 1 and (self.learned is None or served < self.learned):
            self.learned = served
            # The operator's guess was too high: say so once per change, so it can be fixed.
            logger.warning(
                "the OMS serves at most %d items per list page; planning with that "
                "(set OMS_UPSTREAM_MAX_LIMIT=%d to skip the first short page)",
                served,
                served,
            )
