"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from gateway.settings import Settings
from gateway.upstream.client import UpstreamSession
from resolvers.loaders import Loaders
from resolvers.pagination import PageCap


@dataclass(slots=True)
class Context:
    settings: Settings
    session: UpstreamSession
    loaders: Loaders
    request_id: str
    # The upstream's learned page cap: the app's one instance, shared by every operation.
    page_cap: PageCap = field(default_factory=PageCap)

    def list_limit(self) -> int:
        """The largest upstream page size plans may use now."""
        return self.page_cap.limit(self.settings.upstream_max_limit)


Info = strawberry.Info[Context, None]
