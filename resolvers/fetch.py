"""Root data fetching, free of GraphQL machinery so both execution paths share it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.errors import BadUserInput, UpstreamNotFound
from gateway.upstream import Item, ListKind, Page
from resolvers.loaders import Loaders, PageKey
from resolvers.pagination import PagePlan, Window, encode_cursor

_MAX_ID_DIGITS = 18


def parse_id(value: Any, argument: str) -> int:
    """Order item ids are positive integers; anything else never reaches the upstream."""
    text = str(value).strip()
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_ID_DIGITS or int(text) < 1:
        raise BadUserInput(f"`{argument}` must be a positive order item id.", argument=argument)
    return int(text)


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One `orderItems` field, planned: which endpoint, which window, which upstream pages."""

    kind: ListKind
    window: Window
    plan: PagePlan
    order_number: str | None
    wants_items: bool


class Connection:
    """What `orderItems` resolves to; edges and page info are built only when selected."""

    def __init__(self, total_count: int, nodes: list[Item], offset: int, size: int) -> None:
        self.total_count = total_count
        self.nodes = nodes
        self._offset = offset
        self._size = size

    @cached_property
    def page_info(self) -> dict[str, Any]:
        n = max(0, min(self._size, self.total_count - self._offset))
        return {
            "has_next_page": self._offset + n < self.total_count,
            "has_previous_page": self._offset > 0,
            "start_cursor": encode_cursor(self._offset) if n else None,
            "end_cursor": encode_cursor(self._offset + n - 1) if n else None,
        }

    @cached_property
    def edges(self) -> list[dict[str, Any]]:
        offset = self._offset
        return [{"cursor": encode_cursor(offset + i), "node": n} for i, n in enumerate(self.nodes)]


def page_keys(request: ListRequest) -> list[PageKey]:
    """The pages a list loads: the loaders fetch these and the call budget counts them."""
    plan = request.plan
    return [PageKey(request.kind, request.order_number, plan.limit, p) for p in plan.pages]


def count_key(request: ListRequest) -> PageKey | None:
    """The page loaded to learn the count when every planned page was past the end; None when
    that cannot happen (a first page is never past the end: DRF serves it, empty or not)."""
    if request.plan.pages[0] == 1:
        return None
    return PageKey("simple", request.order_number, 1, 1)


async def fetch_connection(loaders: Loaders, request: ListRequest) -> Connection:
    plan, window = request.plan, request.window
    keys = page_keys(request)
    pages = await asyncio.gather(*(_page_or_none(loaders.page(k)) for k in keys))
    count = next((p.count for p in pages if p is not None), None)
    fallback = count_key(request)
    if count is None and fallback is not None:
        # Every page was past the end: one small call learns the count.
        first = await _page_or_none(loaders.page(fallback))
        count = first.count if first is not None else 0
    elif count is None:
        count = 0
    if not request.wants_items:
        return Connection(count, [], window.offset, window.size)
    items: list[Item] = [item for p in pages if p is not None for item in p.results]
    start = window.offset - plan.first_offset
    return Connection(count, items[start : start + window.size], window.offset, window.size)


async def _page_or_none(future: asyncio.Future[Page]) -> Page | None:
    try:
        return await future
    except UpstreamNotFound:
        return None  # DRF's "Invalid page.": this page is past the end


async def fetch_item(loaders: Loaders, raw_id: Any) -> Item | None:
    item: Item | None = await loaders.items.load(parse_id(raw_id, "id"))
    return item


def parse_ids(raw_ids: list[Any], max_ids: int) -> list[int]:
    """The ids of `orderItemsByIds`, all or none: the loaders load these, the budget counts them."""
    if len(raw_ids) > max_ids:
        raise BadUserInput(
            f"At most {max_ids} ids can be asked for at once.", argument="ids", limit=max_ids
        )
    return [parse_id(i, "ids") for i in raw_ids]


async def fetch_items(loaders: Loaders, raw_ids: list[Any], max_ids: int) -> list[Any]:
    """One slot per id; a failing id leaves its exception in its own slot."""
    keys = parse_ids(raw_ids, max_ids)
    return await asyncio.gather(*(loaders.items.load(k) for k in keys), return_exceptions=True)
