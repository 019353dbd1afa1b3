"""Per-operation dataloaders: no upstream request is made twice within one operation."""

from __future__ import annotations

import asyncio
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
    """The loaders of one operation; built per request, since aiodataloader binds to the loop."""

    def __init__(self, session: UpstreamSession, *, detail_concurrency: int) -> None:
        self.session = session
        # The pages asked for so far (loaded, loading or failed), so a plan can tell which of
        # its pages would be new calls.
        self._page_futures: dict[PageKey, asyncio.Future[Page]] = {}
        self.pages: DataLoader[PageKey, Page] = DataLoader(
            self._load_pages, cache_map=self._page_futures
        )
        self.items: DataLoader[int, Item | None] = DataLoader(self._load_items)
        self._detail_slots = asyncio.Semaphore(detail_concurrency)
        self._pending_full_pages: list[asyncio.Future[Page]] = []
        self._seen: dict[int, Item] = {}

    def page(self, key: PageKey) -> asyncio.Future[Page]:
        future = self.pages.load(key)
        if key.kind == "full":
            self._pending_full_pages.append(future)
        return future

    def new_pages(self, keys: list[PageKey]) -> int:
        """How many of `keys` were never asked for: each may cost a call, the others cannot."""
        return sum(1 for key in keys if key not in self._page_futures)

    async def _load_pages(self, keys: list[PageKey]) -> list[Any]:
        # A slim page whose full twin is in the same batch is served from the full one.
        full_twins = {k._replace(kind="simple") for k in keys if k.kind == "full"}
        fetched = [k for k in keys if k not in full_twins]
        results = await asyncio.gather(
            *(self._fetch_page(k) for k in fetched), return_exceptions=True
        )
        by_key: dict[PageKey, Any] = dict(zip(fetched, _settled(results), strict=True))
        return [by_key[k] if k in by_key else by_key[k._replace(kind="full")] for k in keys]

    async def _fetch_page(self, key: PageKey) -> Page:
        page = await self.session.list_page(
            key.kind, limit=key.limit, page=key.page, order_number=key.order_number
        )
        if key.kind == "full":
            for item in page.results:
                self._remember(item)
        return page

    def _remember(self, item: Item) -> None:
        self._seen.setdefault(item["id"], item)
        self.items.prime(item["id"], item)

    async def _load_items(self, ids: list[int]) -> list[Any]:
        # Full pages already under way may carry these items; wait for them before paying for
        # detail calls (their failures are theirs to report).
        if self._pending_full_pages:
            await asyncio.gather(*self._pending_full_pages, return_exceptions=True)
        missing = [i for i in ids if i not in self._seen]
        fetched = await asyncio.gather(
            *(self._fetch_item(i) for i in missing), return_exceptions=True
        )
        by_id: dict[int, Any] = dict(zip(missing, _settled(fetched), strict=True))
        return [self._seen[i] if i in self._seen else by_id[i] for i in ids]

    async def _fetch_item(self, item_id: int) -> Item | None:
        async with self._detail_slots:
            try:
                item = await self.session.detail(item_id)
            except UpstreamNotFound:
                return None
        self._seen.setdefault(item_id, item)
        return item


def _settled(results: list[Any]) -> list[Any]:
    """Gathered results, with cancellation re-raised rather than handed out as a value."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
    return results
