"""Root resolvers: the only async fields, since they are the only ones that do I/O."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from resolvers.context import Info
from resolvers.fetch import fetch_item, fetch_items
from resolvers.planner import SelectionWalker, list_connection
from schema.types import OrderItem, OrderItemConnection


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
        item: Any = await fetch_item(info.context.loaders, id)
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
        last: Annotated[
            int | None,
            strawberry.argument(description="How many items to return, backward (Relay)."),
        ] = None,
        before: Annotated[
            str | None,
            strawberry.argument(description="Return items before this cursor (Relay)."),
        ] = None,
        page: Annotated[
            int | None, strawberry.argument(description="The 1-based page number.")
        ] = None,
        page_size: Annotated[
            int | None, strawberry.argument(description="How many items a page holds.")
        ] = None,
    ) -> OrderItemConnection | None:
        raw = info._raw_info
        args = {"first": first, "after": after, "last": last, "before": before, "page": page,
                "pageSize": page_size, "orderNumber": order_number}  # fmt: skip
        connection: Any = await list_connection(
            info.context, SelectionWalker.of(raw), raw.field_nodes, args
        )
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
    ) -> list[OrderItem | None] | None:
        # One failing id fails only its own slot: graphql-core raises an exception found in a slot.
        results: Any = await fetch_items(
            info.context.loaders, list(ids), info.context.settings.max_ids
        )
        return results
