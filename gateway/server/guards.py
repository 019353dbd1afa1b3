"""Header size limits as pure ASGI middleware: an oversized request never reaches a route."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ErrorCode, error_body


class HeaderLimits:
    """431 for an `Authorization` value over `max_authorization` bytes or headers over
    `max_total` bytes. The server (protocol.py) already cuts a head over the total before buffering
    it; this check holds under any ASGI server, and is the only Authorization one."""

    def __init__(self, app: ASGIApp, *, max_authorization: int, max_total: int) -> None:
        self.app = app
        self.max_authorization = max_authorization
        self.max_total = max_total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            message = self._refusal(scope["headers"])
            if message is not None:
                body = error_body(ErrorCode.HEADERS_TOO_LARGE, message)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _refusal(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        total = 0
        for name, value in headers:
            total += len(name) + len(value) + 4  # "name: value\r\n"
            if name == b"authorization" and len(value) > self.max_authorization:
                return f"The Authorization header exceeds {self.max_authorization} bytes."
        if total > self.max_total:
            return f"The request headers exceed {self.max_total} bytes."
        return None
