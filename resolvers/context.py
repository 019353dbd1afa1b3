"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import strawberry

from gateway.settings import Settings
from gateway.upstream.client import UpstreamSession
from resolvers.loaders import Loaders
from resolvers.pagination import PageCap

if TYPE_CHECKING:
    from resolvers.plan import Plan


@dataclass(slots=True)
class Context:
    settings: Settings
    session: UpstreamSession
    loaders: Loaders
    request_id: str
    # The upstream's learned page cap: the app's one instance, shared by every operation.
    page_cap: PageCap = field(default_factory=PageCap)
    # The operation's plan, set by the executor before execution: resolvers read it, not the
    # selection (`resolvers.plan.shape_of`).
    plan: Plan | None = None
    _list_limit: int | None = field(default=None, init=False, repr=False)

    def list_limit(self) -> int:
        """The largest upstream page size plans may use, as the cap was known when this
        operation first asked: its budget and its plans agree, and a rerun on the same loaders
        (the compiled path's fall-back) plans the pages the first run asked for."""
        if self._list_limit is None:
            self._list_limit = self.page_cap.limit(self.settings.upstream_max_limit)
        return self._list_limit


Info = strawberry.Info[Context, None]
