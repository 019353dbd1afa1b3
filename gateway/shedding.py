"""Load shedding: past a cap of operations in flight, answer 503 at once instead of queueing."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http import request_id_of

_BODY = orjson.dumps(
    {
        "errors": [
            {
                "message": "The gateway is at capacity; retry shortly.",
                "extensions": {"code": "OVERLOADED"},
            }
        ]
    }
)


class LoadShedding:
    """Pure ASGI middleware counting in-flight requests to `path`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        limit: int,
        retry_after: int = 1,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.on_shed = on_shed
        self.path = path
        self.limit = limit
        self.retry_after = str(retry_after)
        self.in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed()
            request_id = request_id_of(Headers(scope=scope))
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", self.retry_after.encode()),
                        (b"x-request-id", request_id.encode()),
                        (b"content-length", str(len(_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
