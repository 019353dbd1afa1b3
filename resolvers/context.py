"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from gateway.settings import Settings
from gateway.upstream import UpstreamSession
from resolvers.loaders import Loaders


@dataclass(slots=True)
class Context:
    settings: Settings
    session: UpstreamSession
    loaders: Loaders
    request_id: str


Info = strawberry.Info[Context, None]
