"""The app's front door: the usual /graphql request skips the middleware stack, and is answered
exactly as the stack answers it.

A request is sent in-process twice, once as the usual request (Host `127.0.0.1`) and once with
the Host in upper case, which the front door leaves to the whole stack and starlette accepts;
both answers must be the same messages but for the request id.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
import pytest

from gateway.server.app import create_app
from gateway.settings import Settings
from tests.conftest import AUTH
from tests.queries import ITEM_FIELDS

TOKEN = AUTH["Authorization"].encode()
DETAIL = b'{"query":"{ orderItem(id: 1) { id price } }"}'
LARGE = orjson.dumps(
    {"query": "{ orderItems(first: 20) { nodes { ...ItemFields } } }" + ITEM_FIELDS}
)


def scope(method: str, headers: list[tuple[bytes, bytes]], host: bytes) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "headers": [(b"host", host), *headers], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip


async def call(app: Any, request: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(request, receive, send)
    return sent


def without_request_id(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for message in messages:
        if "headers" in message:
            message["headers"] = [(n, v) for n, v in message["headers"] if n != b"x-request-id"]
    return messages


def post(body: bytes, *extra: tuple[bytes, bytes]) -> tuple[str, list[Any], bytes]:
    headers = [(b"content-type", b"application/json"), (b"authorization", TOKEN), *extra]
    return "POST", [*headers, (b"content-length", str(len(body)).encode())], body


CASES = {
    "detail": post(DETAIL),
    "compressed": post(LARGE, (b"accept-encoding", b"gzip")),
    "brotli, small": post(DETAIL, (b"accept-encoding", b"br, gzip")),
    "get": ("GET", [(b"authorization", TOKEN)], b""),
    "options": ("OPTIONS", [], b""),
    "delete": ("DELETE", [], b""),
    "not json": post(b"{", (b"accept", b"application/graphql-response+json")),
    "too large": post(b" " * 2_000_000),
    "too large, undeclared": (
        "POST",
        [(b"content-type", b"application/json"), (b"content-length", b"2000000x")],
        b" " * 2_000_000,
    ),
    "two lengths, the first too large": post(DETAIL, (b"content-length", b"2000000")),
    "authorization too long": post(DETAIL, (b"authorization", b"Token " + b"a" * 9000)),
}


@pytest.mark.parametrize("case", CASES)
def test_the_front_door_answers_as_the_stack(upstream, case):
    method, headers, body = CASES[case]
    app = create_app(Settings(upstream_url=upstream.url, token=None))

    async def both() -> tuple[list[Any], list[Any]]:
        async with app.router.lifespan_context(app):
            front = await call(app, scope(method, headers, b"127.0.0.1"), body)
            stack = await call(app, scope(method, headers, b"LOCALHOST"), body)
            return front, stack

    front, stack = asyncio.run(both())
    assert without_request_id(front) == without_request_id(stack)
    if case == "compressed":
        assert dict(front[0]["headers"])[b"content-encoding"] == b"gzip"
        assert orjson.loads(gzip.decompress(front[1]["body"]))["data"]["orderItems"]
    elif case == "detail":
        assert orjson.loads(front[1]["body"]) == {
            "data": {"orderItem": {"id": "1", "price": "599.99"}}
        }


@pytest.mark.parametrize("host", [b"127.0.0.1", b"LOCALHOST"])
def test_a_failure_before_any_answer_is_a_500_and_raised_either_way(host):
    """As starlette's ServerErrorMiddleware: the plain 500, then the error raised on (for the
    server to log); here a `receive` that fails while the body is read."""
    app = create_app(Settings())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise RuntimeError("the body's read failed")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    method, headers, _ = post(DETAIL)
    with pytest.raises(RuntimeError, match="the body's read failed"):
        asyncio.run(app(scope(method, headers, host), receive, send))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-length", b"21"),
                (b"content-type", b"text/plain; charset=utf-8"),
            ],
        },
        {"type": "http.response.body", "body": b"Internal Server Error"},
    ]


@pytest.mark.parametrize("host", [b"127.0.0.1", b"LOCALHOST"])
def test_a_body_in_several_messages_is_read_whole_either_way(upstream, host):
    method, headers, body = post(DETAIL)
    app = create_app(Settings(upstream_url=upstream.url, token=None))
    parts = [body[:5], b"", body[5:20], body[20:]]

    async def chunked() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        messages = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async with app.router.lifespan_context(app):
            await app(scope(method, headers, host), receive, send)
        return sent

    sent = asyncio.run(chunked())
    assert sent[0]["status"] == 200
    assert orjson.loads(sent[1]["body"]) == {"data": {"orderItem": {"id": "1", "price": "599.99"}}}
