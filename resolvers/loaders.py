"""Per-operation dataloaders: no upstream request is made twice within one operation."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

from aiodataloader import DataLoader

from gateway.errors import UpstreamNotFound
from gateway.upstream.client import Item, ListKind, Page, UpstreamSession


class PageKey(NamedTuple):
    kind: ListKind
    order_number: str | None
    limit: int
    page: int


class Loaders:
    """The loaders of one operation; built per request, since aiodataloader binds to the loop.

    Nothing they hold leads back to them (the batch functions share a `_Batches`, not the
    loaders): an operation's pages and items are freed by reference counting the moment it
    ends, rather than waiting as cyclic garbage for the collector, whose young generation a
    50-item list would otherwise fill (and traverse) every few dozen operations."""

    def __init__(self, session: UpstreamSession, *, detail_concurrency: int) -> None:
        self.session = session
        self._detail_concurrency = detail_concurrency
        # Each loader is made when the operation first asks for it (a detail needs no pages
        # loader; an operation that bails before fetching needs neither).
        self._batches: _Batches | None = None
        self._items: DataLoader[int, Item | None] | None = None
        self._pages: DataLoader[PageKey, Page] | None = None
        # The pages asked for so far (loaded, loading or failed), so a plan can tell which of
        # its pages would be new calls.
        self._page_futures: dict[PageKey, asyncio.Future[Page]] = {}
        self._item_futures: dict[int, asyncio.Future[Item | None]] = {}

    def _shared(self) -> _Batches:
        if self._batches is None:
            semaphore = asyncio.Semaphore(self._detail_concurrency)
            self._batches = _Batches(self.session, semaphore)
        return self._batches

    @property
    def items(self) -> DataLoader[int, Item | None]:
        if self._items is None:
            self._items = DataLoader(
                partial(_load_items, self._shared()), cache_map=self._item_futures
            )
        return self._items

    async def item_alone(self, key: int) -> Item | None:
        """`items.load(key)` for an operation whose only load this is (see `Plan.sole`): no
        other key can join its batch, so its one call is made in place, without aiodataloader's
        dispatch tick (a scheduled callback and two tasks), without a detail slot (no other
        call can contend for one) and without building the loader at all. Its outcome goes into
        the loader's cache as that batch would leave it (a done future holding a value or a
        per-key error, as `prime` makes; a failed batch caches nothing), so a later `load`
        (graphql-core's rerun of a bailed compiled run) is served from it without a call."""
        futures = self._item_futures
        future = futures.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # `_load_items([key])` with nothing to wait for or reuse (no page is asked for in
            # such an operation), so straight to its one call.
            try:
                future.set_result(await _fetch_item(self._shared(), key, alone=True))
            except Exception as error:  # this key's error, which the batch would hand out
                future.set_exception(error)
            future = futures.setdefault(key, future)
        item: Item | None = future.result()  # a done future: its value, or its error raised
        return item

    @property
    def pages(self) -> DataLoader[PageKey, Page]:
        if self._pages is None:
            self._pages = DataLoader(
                partial(_load_pages, self._shared()), cache_map=self._page_futures
            )
        return self._pages

    def page(self, key: PageKey) -> asyncio.Future[Page]:
        future = self.pages.load(key)
        if key.kind == "full":
            self._shared().pending_full_pages.append(future)
        return future

    def new_pages(self, keys: list[PageKey]) -> int:
        """How many of `keys` were never asked for: each may cost a call, the others cannot."""
        return sum(1 for key in keys if key not in self._page_futures)


@dataclass(slots=True)
class _Batches:
    """What the batch functions of one operation's loaders share."""

    session: UpstreamSession
    detail_slots: asyncio.Semaphore
    pending_full_pages: list[asyncio.Future[Page]] = field(default_factory=list)
    seen: dict[int, Item] = field(default_factory=dict)


async def _load_pages(batches: _Batches, keys: list[PageKey]) -> list[Any]:
    # A slim page whose full twin is in the same batch is served from the full one.
    full_twins = {k._replace(kind="simple") for k in keys if k.kind == "full"}
    fetched = [k for k in keys if k not in full_twins]
    results = await _gathered([_fetch_page(batches, k) for k in fetched])
    by_key: dict[PageKey, Any] = dict(zip(fetched, _settled(results), strict=True))
    return [by_key[k] if k in by_key else by_key[k._replace(kind="full")] for k in keys]


async def _fetch_page(batches: _Batches, key: PageKey) -> Page:
    page = await batches.session.list_page(
        key.kind, limit=key.limit, page=key.page, order_number=key.order_number
    )
    if key.kind == "full":
        # The items loader serves these from `seen` (see `_load_items`), without a detail
        # call; not primed item by item, which costs a future per item of every page.
        seen = batches.seen
        for item in page.results:
            seen.setdefault(item["id"], item)
    return page


async def _load_items(batches: _Batches, ids: list[int]) -> list[Any]:
    # Full pages already under way may carry these items; wait for them before paying for
    # detail calls (their failures are theirs to report).
    if batches.pending_full_pages:
        await asyncio.gather(*batches.pending_full_pages, return_exceptions=True)
    seen = batches.seen
    missing = [i for i in ids if i not in seen]
    fetched = await _gathered([_fetch_item(batches, i) for i in missing])
    by_id: dict[int, Any] = dict(zip(missing, _settled(fetched), strict=True))
    return [seen[i] if i in seen else by_id[i] for i in ids]


async def _fetch_item(batches: _Batches, item_id: int, *, alone: bool = False) -> Item | None:
    try:
        if alone:  # the operation's only detail call: nothing contends for its slots
            item = await batches.session.detail(item_id)
        else:
            async with batches.detail_slots:
                item = await batches.session.detail(item_id)
    except UpstreamNotFound:
        return None
    batches.seen.setdefault(item_id, item)
    return item


async def _gathered(calls: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """`asyncio.gather(*calls, return_exceptions=True)`; a lone call (a detail, one page) is
    awaited in place, without the task gather would wrap it in."""
    if len(calls) == 1:
        try:
            return [await calls[0]]
        except Exception as error:
            return [error]
    return await asyncio.gather(*calls, return_exceptions=True)


def _settled(results: list[Any]) -> list[Any]:
    """Gathered results, with cancellation re-raised rather than handed out as a value."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    return results
