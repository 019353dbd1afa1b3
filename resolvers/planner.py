"""The endpoint planner: from a list's shape and arguments, the cheapest endpoint and its pages."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any, NamedTuple

from gateway.errors import BadUserInput
from gateway.settings import Settings
from gateway.upstream.client import ListKind
from resolvers.context import Context
from resolvers.fetch import Connection, ListRequest, fetch_connection
from resolvers.pagination import COUNT_PLAN, plan_pages, probe_plan, resolve_window

# Order numbers are short codes; a longer value is a mistake or an attack, not a filter.
MAX_ORDER_NUMBER_LENGTH = 64


class ListShape(NamedTuple):
    """What a list's fetch needs from its selection set."""

    items: bool  # it selects items or edges, not only `totalCount` or `pageInfo`
    full: bool  # the items' selection reaches past what list-simple returns


# A root that is no list: its fetch does not read its selection.
NO_SHAPE = ListShape(items=True, full=True)


def check_filter(argument: str, value: str | None) -> str | None:
    """A filter value as sent upstream; refused before any call when it cannot be meant.

    An empty value would be forwarded as `order_number=` and return the unfiltered list; a
    control character has no place in a code and only ever smuggles something into a log or URL.
    """
    if value is None:
        return None
    if len(value) > MAX_ORDER_NUMBER_LENGTH:
        raise BadUserInput(
            f"`{argument}` is at most {MAX_ORDER_NUMBER_LENGTH} characters.", argument=argument
        )
    if not value.strip():
        raise BadUserInput(f"`{argument}` must not be empty or blank.", argument=argument)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise BadUserInput(f"`{argument}` must not contain control characters.", argument=argument)
    return value


def plan_list(
    settings: Settings,
    shape: ListShape,
    args: Mapping[str, Any],
    max_limit: int | None = None,
) -> ListRequest:
    """Plan one `orderItems` field from its (coerced) arguments and its selection.

    `max_limit` is the upstream page cap as known now (`PageCap.limit`); by default the
    `upstream_max_limit` ceiling.
    """
    order_number = check_filter("orderNumber", args.get("orderNumber"))
    window = resolve_window(
        settings,
        first=args.get("first"),
        after=args.get("after"),
        page=args.get("page"),
        page_size=args.get("pageSize"),
        last=args.get("last"),
        before=args.get("before"),
        order_number=order_number,
    )
    wants_items = window.size > 0 and shape.items
    if not wants_items:
        # Only the count is needed: one slim item tells it.
        return ListRequest("simple", window, COUNT_PLAN, order_number, False)
    limit = max_limit or settings.upstream_max_limit
    plan = probe_plan(window, limit) if window.from_end else plan_pages(window, limit)
    kind: ListKind = "full" if shape.full else "simple"
    return ListRequest(kind, window, plan, order_number, True)


async def list_connection(
    context: Context, args: Mapping[str, Any], shape: ListShape
) -> Connection:
    """Plan and fetch one `orderItems` field: both execution paths call exactly this."""
    settings = context.settings
    request = plan_list(settings, shape, args, context.list_limit())
    return await fetch_connection(
        context.loaders,
        request,
        context.page_cap,
        settings.upstream_max_limit,
        settings.max_upstream_calls,
    )
