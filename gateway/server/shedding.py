"""Load shedding: past a cap of operations in flight, answer 503 at once instead of queueing.

An operation takes a slot only once its body has arrived: a client still sending holds a
connection (bounded by the server, gateway/server/protocol.py), never a slot of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ErrorCode, error_body
from gateway.server.request_id import request_id_of

_BODY = error_body(ErrorCode.OVERLOADED, "The gateway is at capacity; retry shortly.")


class LoadShedding:
    """Pure ASGI middleware counting in-flight requests to `path`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        limit: int,
        max_body: int,
        retry_after: int = 1,
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.on_shed = on_shed
        self.path = path
        self.limit = limit
        self.max_body = max_body
        self.retry_after = str(retry_after)
        self.in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        received = await self.receive_body(scope, receive)
        if received is None:
            return  # the client left (or the server gave up on it) while sending
        await self.admit(self.app, scope, received, receive, send)

    async def admit(
        self, app: ASGIApp, scope: Scope, received: list[Message], receive: Receive, send: Send
    ) -> None:
        """`app` runs the request whose body was `received`, unless the gateway is at capacity
        (a 503 then). Sends nothing before `app` runs, but the 503."""
        if not self._enter():
            await self._refuse(scope, send)
            return
        try:
            await app(scope, _replay(received, receive), send)
        finally:
            self.in_flight -= 1

    def _enter(self) -> bool:
        """Take a slot (True; `admit` gives it back when its app is done), or count a shed
        request (False; `admit` then answers with `_refuse`)."""
        if self.in_flight >= self.limit:
            self.shed += 1
            if self.on_shed is not None:
                self.on_shed()
            return False
        self.in_flight += 1
        return True

    async def _refuse(self, scope: Scope, send: Send) -> None:
        """The 503 of a request shed at capacity."""
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

    async def receive_body(
        self, scope: Scope, receive: Receive, declared: int | None = None
    ) -> list[Message] | None:
        """The body's messages, up to just past `max_body` bytes (the app answers 413 then);
        None when the client disconnected first. `declared`: the first `Content-Length` as
        `_declared_length` reads it, when the caller has read it already."""
        if scope["method"] in ("GET", "HEAD"):
            return []
        if declared is None:
            declared = _declared_length(scope["headers"])
        if declared > self.max_body:
            return []  # refused from the header alone by the app
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            messages.append(message)
            size += len(message.get("body", b""))
            if not message.get("more_body", False) or size > self.max_body:
                return messages


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The first `Content-Length`'s `declared_length`, from the raw list, without starlette's
    `Headers` (which copies it) per request."""
    for name, value in headers:
        if name == b"content-length":
            return declared_length(value)
    return -1


def declared_length(value: bytes | None) -> int:
    """A `Content-Length` value when it is all digits (as the endpoint reads it), else -1."""
    return int(value) if value is not None and value.isdigit() else -1


def _replay(messages: list[Message], receive: Receive) -> Any:
    """A `receive` that hands out the buffered messages first, then the server's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
