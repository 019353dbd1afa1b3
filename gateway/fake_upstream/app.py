"""A fake of the OMS order-item API (DRF envelope, Token auth, paging); it counts calls."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import brotli
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.fake_upstream.data import Item, make_items, order_number_of, simple_view
from gateway.settings import DEMO_TOKEN

BASE = "/api/v1/oms/order_items/"
_HOLD_SECONDS = 30.0  # a held call is answered after this long even if nobody releases it


@dataclass
class Faults:
    """Knobs that make a fraction of calls misbehave, for fault-injection tests and soaks."""

    # status|hang|malformed|truncated|misshaped|content_type, or a hostile mode (see `size`)
    kind: str | None = None
    rate: float = 1.0  # the fraction of calls that get the fault
    status: int = 500
    retry_after: str | None = None
    latency: float = 0.0  # seconds added to every call, faulty or not
    hang: float = 30.0  # seconds a "hang" lasts before answering normally
    endpoints: frozenset[str] = frozenset()  # list | list-simple | detail; empty means all
    seed: int = 1
    times: int | None = None  # at most this many calls get the fault (None: no cap)
    # Decide by (seed, path and query, how often that was called) instead of one shared sequence,
    # so concurrent clients asking for distinct paths meet the same faults on every run.
    per_path: bool = False
    # Hostile modes (kind bomb|huge_body|endless|huge_string): the decoded size of the attack in
    # bytes, and for "bomb" its Content-Encoding (gzip|deflate|br). Each streams lazily, so the
    # fake itself holds a few chunks, never `size` bytes. Kind "encoded" is no attack: the
    # normal answer, compressed with `encoding`.
    size: int = 200 * 1024 * 1024
    encoding: str = "gzip"
    # Only calls filtered by this order number get the fault (an input the upstream fails on).
    order_number: str | None = None
    # For tests that must not depend on timing: every call waits until `hold` is set (at most
    # _HOLD_SECONDS), and `on_call` runs for each call before it is answered (e.g. to move the
    # gateway's fake clock by the time the call "took").
    hold: threading.Event | None = None
    on_call: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.injected = 0
        self.streamed = 0  # bytes of a hostile body handed to the server so far

    def hits(self, endpoint: str, path: str = "", order_number: str | None = None) -> bool:
        if self.kind is None or (self.endpoints and endpoint not in self.endpoints):
            return False
        if self.order_number is not None and order_number != self.order_number:
            return False
        with self._lock:
            if self.times is not None and self.injected >= self.times:
                return False
            if self.per_path:
                self._seen[path] += 1
                draw = self.draw(path, self._seen[path])
            else:
                draw = self._rng.random()
            hit = draw < self.rate
            self.injected += hit
            return hit

    def draw(self, path: str, nth: int) -> float:
        """With `per_path`, the draw for the `nth` call of `path` (a hit when below `rate`)."""
        return random.Random(f"{self.seed}:{path}:{nth}").random()


@dataclass
class FakeOms:
    """The fake's data and its books: what it holds and every call it received."""

    items: list[Item] = field(default_factory=make_items)
    tokens: frozenset[str] = frozenset({DEMO_TOKEN})
    default_limit: int = 10
    max_limit: int = 100
    calls: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    forwarded: list[dict[str, str]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    in_flight: int = 0
    max_in_flight: int = 0
    # Answer with a Set-Cookie, as a session-auth backend or a sticky load balancer would.
    set_cookies: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {item["id"]: item for item in self.items}
        self._body_cache: dict[tuple[Any, ...], bytes] = {}

    def record(self, endpoint: str, request: Request) -> None:
        query = f"?{request.url.query}" if request.url.query else ""
        with self._lock:
            self.calls[endpoint] += 1
            self.log.append(f"{request.url.path}{query}")
            # Headers a gateway should forward (never the token: tests must not store it).
            self.forwarded.append(
                {
                    h: request.headers[h]
                    for h in ("x-request-id", "traceparent", "cookie")
                    if h in request.headers
                }
            )

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.log.clear()
            self.forwarded.clear()
            self.faults = Faults()
            self.set_cookies = False
            self.max_in_flight = self.in_flight

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "total": sum(self.calls.values()),
                "log": list(self.log),
                "max_in_flight": self.max_in_flight,
            }

    def matching(self, order_number: str | None) -> list[Item]:
        if order_number is None:
            return self.items
        return [i for i in self.items if order_number_of(i["order"]) == order_number]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _authenticate(fake: FakeOms, request: Request) -> Response | None:
    header = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": "Token"}
    if not header:
        return _json({"detail": "Authentication credentials were not provided."}, 401, challenge)
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "token" or not key or " " in key.strip():
        return _json({"detail": "Invalid token header. No credentials provided."}, 401, challenge)
    if key.strip() not in fake.tokens:
        return _json({"detail": "Invalid token."}, 401, challenge)
    return None


def _page_link(request: Request, limit: int, page: int | None) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]
    params.append(("limit", str(limit)))
    if page is not None and page > 1:  # DRF drops page=1 from the previous link
        params.append(("page", str(page)))
    return f"{request.base_url}{request.url.path.lstrip('/')}?{urlencode(params)}"


def _list_response(fake: FakeOms, request: Request, simple: bool) -> Response:
    denied = _authenticate(fake, request)
    if denied is not None:
        return denied
    query = request.query_params
    try:
        limit = int(query.get("limit", fake.default_limit))
    except ValueError:
        limit = fake.default_limit
    limit = fake.default_limit if limit <= 0 else min(limit, fake.max_limit)
    order_number = query.get("order_number")
    raw_page = query.get("page", "1")
    cache_key = (simple, order_number, limit, raw_page, str(request.base_url))
    cached = fake._body_cache.get(cache_key)
    if cached is not None:
        return Response(cached, media_type="application/json")
    matching = fake.matching(order_number)
    pages = max(1, -(-len(matching) // limit))
    try:
        page = int(raw_page)
    except ValueError:
        page = 0
    if not 1 <= page <= pages:
        return _json({"detail": "Invalid page."}, 404)
    chunk = matching[(page - 1) * limit : page * limit]
    body = orjson.dumps(
        {
            "count": len(matching),
            "next": _page_link(request, limit, page + 1) if page < pages else None,
            "previous": _page_link(request, limit, page - 1) if page > 1 else None,
            "results": [simple_view(i) for i in chunk] if simple else chunk,
        }
    )
    fake._body_cache[cache_key] = body
    return Response(body, media_type="application/json")


HOSTILE = frozenset({"bomb", "huge_body", "endless", "huge_string"})
_CHUNK = 64 * 1024
# The fake stops an attack body after this long even if nobody disconnects (bounded loops).
_ATTACK_SECONDS = 60.0


async def _filler(faults: Faults, size: int, unit: bytes = b" ") -> AsyncIterator[bytes]:
    """`size` bytes of `unit` in 64 KiB chunks, yielding to the loop between chunks."""
    chunk = unit * (_CHUNK // len(unit))
    started = time.monotonic()
    while size > 0 and time.monotonic() - started < _ATTACK_SECONDS:
        part = chunk[:size]
        yield part
        size -= len(part)
        faults.streamed += len(part)
        await asyncio.sleep(0)


# Compressed bombs by (size, encoding), made once: ~1 MB of gzip for 1 GiB, a few KB of br.
_BOMBS: dict[tuple[int, str], bytes] = {}


def _compress_bomb(size: int, encoding: str) -> bytes:
    """A JSON-looking body of `size` bytes (mostly spaces), compressed."""
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        step: Callable[[bytes], bytes] = compressor.process
        end: Callable[[], bytes] = compressor.finish
    else:
        z = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        step, end = z.compress, z.flush
    parts = [step(b'{"count": 1, "results": [')]
    spaces = b" " * _CHUNK
    for _ in range(size // _CHUNK):
        parts.append(step(spaces))
    parts.append(step(b"]}"))
    parts.append(end())
    return b"".join(parts)


async def _prepare_bomb(faults: Faults) -> bytes:
    key = (faults.size, faults.encoding)
    if key not in _BOMBS:
        if len(_BOMBS) >= 4:  # a few MB at most: the soak and the tests use two or three
            _BOMBS.clear()
        _BOMBS[key] = await asyncio.to_thread(_compress_bomb, *key)
    return _BOMBS[key]


async def _bomb(faults: Faults) -> AsyncIterator[bytes]:
    body = await _prepare_bomb(faults)
    for start in range(0, len(body), _CHUNK):
        part = body[start : start + _CHUNK]
        yield part
        faults.streamed += len(part)
        await asyncio.sleep(0)


async def _huge_string(faults: Faults, body: bytes) -> AsyncIterator[bytes]:
    """The real answer with a `size`-byte string inside its first item's `attributes`."""
    data = orjson.loads(body)
    item = data["results"][0] if "results" in data else data
    item["attributes"] = {"note": "HUGE"}
    head, tail = orjson.dumps(data).split(b'"HUGE"', 1)
    yield head + b'"'
    async for chunk in _filler(faults, faults.size, b"x"):
        yield chunk
    yield b'"' + tail


def _hostile(faults: Faults, body: bytes) -> Response:
    """A 200 answer built to exhaust a client: a compression bomb, a body of `size` bytes
    (declared), a chunked body that never ends, or a field of `size` bytes."""
    json_type = "application/json"
    if faults.kind == "bomb":
        headers = {"Content-Encoding": faults.encoding}
        return StreamingResponse(_bomb(faults), 200, headers, json_type)
    if faults.kind == "huge_body":
        headers = {"Content-Length": str(faults.size)}
        return StreamingResponse(_filler(faults, faults.size), 200, headers, json_type)
    if faults.kind == "endless":
        return StreamingResponse(_filler(faults, 1 << 62), 200, media_type=json_type)
    return StreamingResponse(_huge_string(faults, body), 200, media_type=json_type)


def _encoded(response: Response, encoding: str) -> Response:
    body = bytes(response.body)
    if encoding == "br":
        body = brotli.compress(body)
    else:
        z = zlib.compressobj(6, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        body = z.compress(body) + z.flush()
    headers = {"Content-Encoding": encoding}
    return Response(body, response.status_code, headers, response.media_type)


async def _faulty(
    faults: Faults, handler: Callable[[Request], Response], request: Request
) -> Response:
    if faults.kind == "encoded":
        return _encoded(handler(request), faults.encoding)
    if faults.kind in HOSTILE:
        return _hostile(faults, bytes(handler(request).body))
    if faults.kind == "hang":
        await asyncio.sleep(faults.hang)
        return handler(request)
    if faults.kind == "status":
        headers = {"Retry-After": faults.retry_after} if faults.retry_after else None
        return _json({"detail": "Injected failure."}, faults.status, headers)
    if faults.kind == "misshaped":
        return _json({"count": "many", "results": {"id": 1}})
    if faults.kind == "content_type":
        return Response("<html><body>Bad Gateway</body></html>", 200, media_type="text/html")
    body = bytes(handler(request).body)
    if faults.kind == "truncated":
        return Response(body[: len(body) // 2], media_type="application/json")
    return Response(b"{'detail': not json", media_type="application/json")  # malformed


def create_fake_app(fake: FakeOms | None = None) -> Starlette:
    """The fake as an ASGI app; `app.state.fake` exposes its books to in-process tests."""
    fake = fake or FakeOms()

    def endpoint(name: str, handler: Callable[[Request], Response]) -> Callable[..., Any]:
        async def serve(request: Request) -> Response:
            fake.record(name, request)
            fake.enter()
            try:
                faults = fake.faults
                if faults.latency:
                    await asyncio.sleep(faults.latency)
                if faults.hold is not None:
                    await asyncio.to_thread(faults.hold.wait, _HOLD_SECONDS)
                if faults.on_call is not None:
                    faults.on_call()
                path = request.url.path + "?" + request.url.query
                if faults.hits(name, path, request.query_params.get("order_number")):
                    return await _faulty(faults, handler, request)
                response = handler(request)
                if fake.set_cookies:
                    response.set_cookie("sessionid", f"session-{len(fake.log)}", path="/")
                return response
            finally:
                fake.leave()

        return serve

    def detail(request: Request) -> Response:
        denied = _authenticate(fake, request)
        if denied is not None:
            return denied
        raw = request.path_params["item_id"]
        item = fake.by_id.get(int(raw)) if raw.isdigit() else None
        if item is None:
            return _json({"detail": "Not found."}, 404)
        return _json(item)

    async def stats(request: Request) -> Response:
        return _json(fake.stats())

    async def set_faults(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["endpoints"] = frozenset(body.get("endpoints", ()))
        faults = Faults(**body)
        if faults.kind == "bomb":  # compress it now, so no attacked call waits for it
            await _prepare_bomb(faults)
        fake.faults = faults
        return _json({"ok": True})

    async def reset(request: Request) -> Response:
        fake.reset()
        return _json({"ok": True})

    app = Starlette(
        routes=[
            Route(BASE, endpoint("list", lambda r: _list_response(fake, r, simple=False))),
            Route(
                f"{BASE}list-simple/",
                endpoint("list-simple", lambda r: _list_response(fake, r, simple=True)),
            ),
            Route(BASE + "{item_id}/", endpoint("detail", detail)),
            Route("/__fake__/faults", set_faults, methods=["POST"]),
            Route("/__fake__/stats", stats),
            Route("/__fake__/reset", reset, methods=["POST"]),
        ]
    )
    app.state.fake = fake
    return app
