"""Root data fetching, free of GraphQL machinery so both execution paths share it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.errors import (
    BadUserInput,
    CostLimitExceeded,
    UpstreamBadResponse,
    UpstreamNotFound,
    UpstreamPageCapped,
)
from gateway.upstream.client import Item, ListKind, Page
from resolvers.loaders import Loaders, PageKey
from resolvers.pagination import COUNT_PLAN, PageCap, PagePlan, Window, encode_cursor, plan_pages

_MAX_ID_DIGITS = 18


def parse_id(value: Any, argument: str) -> int:
    """Order item ids are positive integers; anything else never reaches the upstream."""
    text = str(value).strip()
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_ID_DIGITS or int(text) < 1:
        raise BadUserInput(f"`{argument}` must be a positive order item id.", argument=argument)
    return int(text)


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One `orderItems` field, planned: which endpoint, which window, which upstream pages.

    A `from_end` window (`last` without `before`) is placed by the count first: `plan` is then
    its probe (`probe_plan`), and its other pages are planned once the count is known.
    """

    kind: ListKind
    window: Window
    plan: PagePlan
    order_number: str | None
    wants_items: bool

    def page_keys(self) -> list[PageKey]:
        return [PageKey(self.kind, self.order_number, self.plan.limit, p) for p in self.plan.pages]


def count_key(order_number: str | None) -> PageKey:
    """The cheapest call that tells the count; shared by every count-only need of a filter."""
    return PageKey("simple", order_number, COUNT_PLAN.limit, COUNT_PLAN.pages[0])


def count_fallback(request: ListRequest) -> PageKey | None:
    """The count call a list makes when every planned page is past the end (`_fetch_plan`);
    never when it fetches page 1, which DRF serves, empty or not, with the count. A `from_end`
    window is placed by its count first: `unplaced_calls` accounts for that."""
    if request.window.from_end or request.plan.pages[0] == 1:
        return None
    return count_key(request.order_number)


class Connection:
    """What `orderItems` resolves to; edges and page info are built only when selected."""

    def __init__(
        self, total_count: int, nodes: list[Item], window: Window, order_number: str | None
    ) -> None:
        self.total_count = total_count
        self.nodes = nodes
        self._offset = window.offset
        self._size = window.size
        self._order_number = order_number

    @cached_property
    def page_info(self) -> dict[str, Any]:
        # Relay's rules, with the count known: both flags say whether items exist on that side,
        # in either direction and for a page past either end.
        offset, count = self._offset, self.total_count
        n = max(0, min(self._size, count - offset))
        cursor, number = encode_cursor, self._order_number
        return {
            "has_next_page": offset + n < count,
            "has_previous_page": min(offset, count) > 0,
            "start_cursor": cursor(offset, number) if n else None,
            "end_cursor": cursor(offset + n - 1, number) if n else None,
        }

    @cached_property
    def edges(self) -> list[dict[str, Any]]:
        offset, number = self._offset, self._order_number
        return [
            {"cursor": encode_cursor(offset + i, number), "node": n}
            for i, n in enumerate(self.nodes)
        ]


# Rounds of learning a smaller page cap within one field before the upstream is declared broken.
_MAX_PLAN_ROUNDS = 3


async def fetch_connection(
    loaders: Loaders, request: ListRequest, cap: PageCap, ceiling: int, budget: int
) -> Connection:
    """The field's items: the planned pages, re-planned when the upstream caps pages lower."""
    window, plan = request.window, request.plan
    count: int | None = None
    if window.from_end:
        count, window, placed = await _place(loaders, request, cap, ceiling)
        if placed != plan:
            _check_budget(loaders, _keys(request, placed), budget)
        plan = placed
    for _ in range(_MAX_PLAN_ROUNDS):
        try:
            return await _fetch_plan(loaders, request, window, plan, count)
        except UpstreamPageCapped as capped:
            await _learn_cap(loaders, request, capped, cap)
        plan = plan_pages(window, cap.limit(ceiling))
        _check_budget(loaders, _keys(request, plan), budget)
    raise UpstreamBadResponse("The OMS API kept serving list pages shorter than it said.")


async def _fetch_plan(
    loaders: Loaders, request: ListRequest, window: Window, plan: PagePlan, count: int | None
) -> Connection:
    keys = _keys(request, plan)
    if len(keys) == 1:
        pages = [await _page_or_none(loaders.page(keys[0]))]  # no task for a lone page
    else:
        pages = await asyncio.gather(*(_page_or_none(loaders.page(k)) for k in keys))
    if count is None:
        count = next((p.count for p in pages if p is not None), None)
    if count is None:
        # Every page was past the end: one small call learns the count.
        count = await _count(loaders, request.order_number)
    if not request.wants_items:
        return Connection(count, [], window, request.order_number)
    items: list[Item] = [item for p in pages if p is not None for item in p.results]
    start = window.offset - plan.first_offset
    nodes = items[start : start + window.size]
    return Connection(count, nodes, window, request.order_number)


def _keys(request: ListRequest, plan: PagePlan) -> list[PageKey]:
    kind = request.kind if request.wants_items else "simple"
    return [PageKey(kind, request.order_number, plan.limit, p) for p in plan.pages]


async def _place(
    loaders: Loaders, request: ListRequest, cap: PageCap, ceiling: int
) -> tuple[int, Window, PagePlan]:
    """Place a `from_end` window by its probe: the count, the window, and the plan to fetch it."""
    if not request.wants_items:
        count = await _count(loaders, request.order_number)
        return count, request.window.settle(count), COUNT_PLAN
    probe = request.plan
    key = PageKey(request.kind, request.order_number, probe.limit, probe.pages[0])
    try:
        first = await _page_or_none(loaders.page(key))
    except UpstreamPageCapped as capped:  # page 1: its length is the cap
        cap.learn(capped.served)
        first = None
    count = first.count if first is not None else await _count(loaders, request.order_number)
    window = request.window.settle(count)
    if first is not None and window.offset + window.size <= probe.limit:
        return count, window, probe  # the probe holds the whole answer
    return count, window, plan_pages(window, cap.limit(ceiling))


async def _count(loaders: Loaders, order_number: str | None) -> int:
    first = await _page_or_none(loaders.page(count_key(order_number)))
    return first.count if first is not None else 0


async def _learn_cap(
    loaders: Loaders, request: ListRequest, capped: UpstreamPageCapped, cap: PageCap
) -> None:
    """Learn the cap exactly: the first page served short is the cap; a later one needs page 1."""
    if capped.page != 1:
        key = PageKey(request.kind, request.order_number, capped.limit, 1)
        try:
            await loaders.page(key)
        except UpstreamPageCapped as first:
            capped = first
        else:
            raise UpstreamBadResponse(
                "The OMS API served a short list page after a full first page."
            ) from capped
    cap.learn(capped.served)


def _check_budget(loaders: Loaders, keys: list[PageKey], budget: int) -> None:
    """Refuse a re-plan whose new calls would take the operation's calls past the budget.

    Only pages not asked for yet count: a rerun of the operation on the same loaders (the
    compiled path's fall-back) replans pages the first run fetched, and those cost nothing.
    """
    calls = loaders.new_pages(keys)
    made = sum(loaders.session.calls.values())
    if calls and made + calls > budget:
        raise CostLimitExceeded(
            f"The OMS API serves smaller pages than planned; this list now needs {calls} more "
            f"upstream calls and the budget is {budget}. Ask for fewer items.",
            cost=made + calls,
            budget=budget,
        )


async def _page_or_none(future: asyncio.Future[Page]) -> Page | None:
    try:
        return await future
    except UpstreamNotFound:
        return None  # DRF's "Invalid page.": this page is past the end


def fetch_item(loaders: Loaders, raw_id: Any, *, alone: bool = False) -> Awaitable[Item | None]:
    """The item `raw_id` names; `alone` when this is the operation's only load. The loader's
    awaitable itself, not a coroutine around it (a bad id raises here, at the call)."""
    key = parse_id(raw_id, "id")
    if alone:
        return loaders.item_alone(key)
    return loaders.items.load(key)


def parse_ids(raw_ids: list[Any], max_ids: int) -> list[int | BadUserInput]:
    """Each id parsed, or the error of its own slot: one bad id must not cost the others.
    The loaders load the ints and the call budget counts them; too many ids fail the field."""
    if len(raw_ids) > max_ids:
        raise BadUserInput(
            f"At most {max_ids} ids can be asked for at once.", argument="ids", limit=max_ids
        )
    parsed: list[int | BadUserInput] = []
    for index, raw in enumerate(raw_ids):
        try:
            parsed.append(parse_id(raw, "ids"))
        except BadUserInput:
            parsed.append(
                BadUserInput(f"`ids[{index}]` is not a positive order item id.", argument="ids")
            )
    return parsed


async def fetch_items(loaders: Loaders, raw_ids: list[Any], max_ids: int) -> list[Any]:
    """One slot per id; a failing id (bad or failed upstream) leaves its exception in its slot."""
    keys = parse_ids(raw_ids, max_ids)
    loads = [loaders.items.load(k) for k in keys if isinstance(k, int)]
    fetched = iter(await asyncio.gather(*loads, return_exceptions=True))
    return [next(fetched) if isinstance(k, int) else k for k in keys]
