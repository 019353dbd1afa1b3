"""Root resolvers: the only async fields, since they are the only ones that do I/O."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from resolvers.context import Info
from resolvers.plan import shape_of
from resolvers.planner import NO_SHAPE
from resolvers.roots import ORDER_ITEM, ORDER_ITEMS, ORDER_ITEMS_BY_IDS
from schema.types import OBJECTS, OrderItem, OrderItemConnection


@strawberry.type(description="Order items of the Akinon OMS.")
class Query:
    @strawberry.field(
        name=ORDER_ITEM.name,
        metadata=ORDER_ITEM.metadata,
        description=(
            "One order item by id, from the detail endpoint. Null when the OMS has no such item."
        ),
    )
    async def order_item(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The order item's id, a positive integer."),
        ],
    ) -> OrderItem | None:
        item: Any = await ORDER_ITEM.fetch(info.context, {"id": id}, NO_SHAPE)
        return item

    @strawberry.field(
        name=ORDER_ITEMS.name,
        metadata={**ORDER_ITEMS.metadata, OBJECTS: True},  # a `Connection`
        description=(
            "A page of order items. Page forward with `first`/`after`, backward with "
            "`last`/`before` (Relay), or by `page`/`pageSize`. Selections that need only ids of "
            "`state` and `product` are served from the cheaper list-simple endpoint. Each "
            "upstream page is one call of the operation's budget of {max_upstream_calls}; the "
            "gateway asks the OMS for at most {upstream_max_limit} items per call."
        ),
    )
    async def order_items(
        self,
        info: Info,
        order_number: Annotated[
            str | None,
            strawberry.argument(
                description="Only the items of this order number: at most "
                "{max_order_number_length} characters, not blank, no control characters."
            ),
        ] = None,
        first: Annotated[
            int | None,
            strawberry.argument(
                description="How many items to return (Relay): at most {max_page_size}; "
                "{default_page_size} when neither `first`, `last` nor `pageSize` is given."
            ),
        ] = None,
        after: Annotated[
            str | None,
            strawberry.argument(
                description="Return items after this cursor (Relay). A cursor works only with "
                "the `orderNumber` it came with."
            ),
        ] = None,
        last: Annotated[
            int | None,
            strawberry.argument(
                description="How many items to return, ending at `before` or, without it, at "
                "the end of the list (Relay): at most {max_page_size}."
            ),
        ] = None,
        before: Annotated[
            str | None,
            strawberry.argument(
                description="Return items before this cursor (Relay). A cursor works only with "
                "the `orderNumber` it came with."
            ),
        ] = None,
        page: Annotated[
            int | None, strawberry.argument(description="The 1-based page number.")
        ] = None,
        page_size: Annotated[
            int | None,
            strawberry.argument(
                description="How many items a page holds: at most {max_page_size}."
            ),
        ] = None,
    ) -> OrderItemConnection | None:
        args = {"first": first, "after": after, "last": last, "before": before, "page": page,
                "pageSize": page_size, "orderNumber": order_number}  # fmt: skip
        shape = shape_of(info.context.plan, info._raw_info)
        connection: Any = await ORDER_ITEMS.fetch(info.context, args, shape)
        return connection

    @strawberry.field(
        name=ORDER_ITEMS_BY_IDS.name,
        metadata=ORDER_ITEMS_BY_IDS.metadata,
        description=(
            "Order items by id, one slot per id in the order given; null where the OMS has no "
            "such item, or (with an error at that slot) where the id is not a positive integer. "
            "Repeated ids cost one upstream call."
        ),
    )
    async def order_items_by_ids(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(
                description="The order item ids: at most {max_ids}. Each distinct id costs at "
                "most one upstream call of the operation's budget of {max_upstream_calls}."
            ),
        ],
    ) -> list[OrderItem | None] | None:
        # One failing id fails only its own slot: graphql-core raises an exception found in a slot.
        results: Any = await ORDER_ITEMS_BY_IDS.fetch(info.context, {"ids": ids}, NO_SHAPE)
        return results
