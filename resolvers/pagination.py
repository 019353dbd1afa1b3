"""Pagination: turn Relay or page arguments into a window, and a window into upstream pages."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from gateway.errors import BadUserInput
from gateway.settings import Settings

_CURSOR_PREFIX = "oi:"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 12:
        raise BadUserInput("`after` is not a cursor this API issued.", argument="after")
    return int(digits)


@dataclass(frozen=True, slots=True)
class Window:
    """The absolute range [offset, offset + size) of matching items a field asks for."""

    offset: int
    size: int


def resolve_window(
    settings: Settings,
    *,
    first: int | None,
    after: str | None,
    page: int | None,
    page_size: int | None,
) -> Window:
    """`first`/`pageSize` set the size and `after`/`page` the start; each pair must agree."""
    if first is not None and first < 0:
        raise BadUserInput("`first` must not be negative.", argument="first")
    if page_size is not None and page_size < 1:
        raise BadUserInput("`pageSize` must be at least 1.", argument="pageSize")
    if page is not None and page < 1:
        raise BadUserInput("`page` starts at 1.", argument="page")
    if first is not None and page_size is not None and first != page_size:
        raise BadUserInput(
            "`first` and `pageSize` both set the page size; give one, or the same value.",
            argument="first",
        )
    if after is not None and page is not None:
        raise BadUserInput(
            "`after` and `page` both set where the page starts; give only one.", argument="after"
        )
    size = first if first is not None else page_size
    if size is None:
        size = settings.default_page_size
    if size > settings.max_page_size:
        raise BadUserInput(
            f"At most {settings.max_page_size} items can be asked for at once; "
            f"ask for fewer and follow `pageInfo.endCursor`.",
            argument="first" if first is not None else "pageSize",
            limit=settings.max_page_size,
        )
    if after is not None:
        offset = decode_cursor(after) + 1
    elif page is not None:
        offset = (page - 1) * size
    else:
        offset = 0
    return Window(offset=offset, size=size)


@dataclass(frozen=True, slots=True)
class PagePlan:
    """Which upstream pages of `limit` items cover a window."""

    limit: int
    pages: tuple[int, ...]

    @property
    def first_offset(self) -> int:
        return (self.pages[0] - 1) * self.limit


def plan_pages(window: Window, max_limit: int) -> PagePlan:
    """The fewest upstream calls that cover the window, then the least over-fetch."""
    start, end = window.offset, window.offset + window.size
    if window.size == 0:
        return PagePlan(limit=1, pages=(1,))  # only the count is wanted
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
