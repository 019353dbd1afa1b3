"""Root resolvers: the only async fields, since they are the only ones that do I/O."""

from __future__ import annotations

import asyncio
from functools import cached_property
from typing import Annotated, Any

import strawberry

from gateway.errors import BadUserInput, UpstreamNotFound
from gateway.upstream import Item, ListKind, Page
from resolvers.context import Info
from resolvers.loaders import PageKey
from resolvers.pagination import PagePlan, Window, encode_cursor, plan_pages, resolve_window
from resolvers.planner import SelectionWalker, list_kind, selects_items
from schema.types import OrderItem, OrderItemConnection

_MAX_ID_DIGITS = 18


def parse_id(value: str, argument: str) -> int:
    """Order item ids are positive integers; anything else never reaches the upstream."""
    text = str(value).strip()
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_ID_DIGITS:
        raise BadUserInput(f"`{argument}` must be a numeric order item id.", argument=argument)
    return int(text)


class Connection:
    """What `orderItems` resolves to; edges and page info are built only when selected."""

    def __init__(self, total_count: int, nodes: list[Item], offset: int, size: int) -> None:
        self.total_count = total_count
        self.nodes = nodes
        self._offset = offset
        self._size = size

    @cached_property
    def _returned(self) -> int:
        return max(0, min(self._size, self.total_count - self._offset))

    @cached_property
    def page_info(self) -> dict[str, Any]:
        n = self._returned
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


async def _fetch_window(info: Info, window: Window, order_number: str | None) -> Connection:
    walker = SelectionWalker.of(info._raw_info)
    field_nodes = info._raw_info.field_nodes
    loaders = info.context.loaders
    wants_items = window.size > 0 and selects_items(walker, field_nodes)
    kind: ListKind = "simple"
    if not wants_items:
        plan = PagePlan(limit=1, pages=(1,))
    else:
        plan = plan_pages(window, info.context.settings.upstream_max_limit)
        kind = list_kind(walker, field_nodes)
    keys = [PageKey(kind, order_number, plan.limit, p) for p in plan.pages]
    pages = await asyncio.gather(*(_page_or_none(loaders.page(k)) for k in keys))
    count = next((p.count for p in pages if p is not None), None)
    if count is None:
        # Every page was past the end: one small call learns the count.
        first = await _page_or_none(loaders.page(PageKey("simple", order_number, 1, 1)))
        count = first.count if first is not None else 0
    if not wants_items:
        return Connection(count, [], window.offset, window.size)
    items: list[Item] = [item for p in pages if p is not None for item in p.results]
    start = window.offset - plan.first_offset
    return Connection(count, items[start : start + window.size], window.offset, window.size)


async def _page_or_none(future: asyncio.Future[Page]) -> Page | None:
    try:
        return await future
    except UpstreamNotFound:
        return None  # DRF's "Invalid page.": this page is past the end


@strawberry.type(description="Order items of the Akinon OMS.")
class Query:
    @strawberry.field(
        description=(
            "One order item by id, from the detail endpoint. Null when the OMS has no such item."
        )
    )
    async def order_item(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The order item's id.")],
    ) -> OrderItem | None:
        item: Any = await info.context.loaders.items.load(parse_id(id, "id"))
        return item

    @strawberry.field(
        description=(
            "A page of order items. Page with `first`/`after` (Relay) or `page`/`pageSize`. "
            "Selections that need only ids of `state` and `product` are served from the cheaper "
            "list-simple endpoint."
        )
    )
    async def order_items(
        self,
        info: Info,
        order_number: Annotated[
            str | None, strawberry.argument(description="Only the items of this order number.")
        ] = None,
        first: Annotated[
            int | None, strawberry.argument(description="How many items to return (Relay).")
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(description="Return items after this cursor (Relay)."),
        ] = None,
        page: Annotated[
            int | None, strawberry.argument(description="The 1-based page number.")
        ] = None,
        page_size: Annotated[
            int | None, strawberry.argument(description="How many items a page holds.")
        ] = None,
    ) -> OrderItemConnection:
        window = resolve_window(
            info.context.settings, first=first, after=after, page=page, page_size=page_size
        )
        connection: Any = await _fetch_window(info, window, order_number)
        return connection

    @strawberry.field(
        description=(
            "Order items by id, one slot per id in the order given; null where the OMS has no "
            "such item. Repeated ids cost one upstream call."
        )
    )
    async def order_items_by_ids(
        self,
        info: Info,
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="The order item ids.")],
    ) -> list[OrderItem | None]:
        keys = [parse_id(i, "ids") for i in ids]
        futures = [info.context.loaders.items.load(k) for k in keys]
        # One failing id fails only its own slot: graphql-core raises an exception found in a slot.
        results: Any = await asyncio.gather(*futures, return_exceptions=True)
        return results
