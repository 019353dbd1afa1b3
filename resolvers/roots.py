"""The root fields, one entry each: its name, how it fetches, and the upstream calls it plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphql import GraphQLField

from gateway.settings import Settings
from resolvers.context import Context
from resolvers.fetch import fetch_item, fetch_items, parse_id, parse_ids
from resolvers.planner import ListShape, list_connection, plan_list

if TYPE_CHECKING:
    from resolvers.cost import Cost

# The key of a root's entry in its Strawberry field's `metadata`.
ROOT = "gateway.root"


@dataclass(frozen=True, slots=True)
class Root:
    """One root field, as the Strawberry `Query`, the compiled path and the budget all use it.

    `fetch` and `plan` take the field's coerced arguments by their GraphQL names; `shaped`
    roots read their selection (a `ListShape`), the others are given `NO_SHAPE`.
    """

    name: str
    fetch: Callable[[Context, Mapping[str, Any], ListShape], Awaitable[Any]]
    plan: Callable[[Cost, Settings, Mapping[str, Any], ListShape, int | None], None]
    shaped: bool = False

    @property
    def metadata(self) -> dict[str, Root]:
        return {ROOT: self}


def root_of(definition: GraphQLField) -> Root | None:
    """The entry a schema's root field declares, if any (introspection fields declare none)."""
    strawberry_field = (definition.extensions or {}).get("strawberry-definition")
    entry = strawberry_field.metadata.get(ROOT) if strawberry_field is not None else None
    return entry if isinstance(entry, Root) else None


def _fetch_item(context: Context, args: Mapping[str, Any], _: ListShape) -> Awaitable[Any]:
    # No coroutine of its own: the caller awaits the loader's awaitable directly.
    plan = context.plan
    alone = plan is not None and plan.sole is ORDER_ITEM
    return fetch_item(context.loaders, args["id"], alone=alone)


def _plan_item(
    cost: Cost, _s: Settings, args: Mapping[str, Any], _: ListShape, _m: int | None
) -> None:
    cost.ids.add(parse_id(args["id"], "id"))


async def _fetch_items(context: Context, args: Mapping[str, Any], _: ListShape) -> Any:
    return await fetch_items(context.loaders, list(args["ids"]), context.settings.max_ids)


def _plan_items(
    cost: Cost, settings: Settings, args: Mapping[str, Any], _: ListShape, _m: int | None
) -> None:
    # A bad id fails only its own slot, so the others still count.
    ids = parse_ids(list(args["ids"]), settings.max_ids)
    cost.ids.update(i for i in ids if isinstance(i, int))


def _plan_list(
    cost: Cost,
    settings: Settings,
    args: Mapping[str, Any],
    shape: ListShape,
    max_limit: int | None,
) -> None:
    request = plan_list(settings, shape, args, max_limit)
    cost.add_list(request, max_limit or settings.upstream_max_limit)


ORDER_ITEM = Root("orderItem", _fetch_item, _plan_item)
ORDER_ITEMS = Root("orderItems", list_connection, _plan_list, shaped=True)
ORDER_ITEMS_BY_IDS = Root("orderItemsByIds", _fetch_items, _plan_items)
