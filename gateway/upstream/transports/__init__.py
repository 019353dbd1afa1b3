"""The transport seam: one GET to the OMS; its status, headers and a bounded body come back.

    OmsClient (upstream/client.py): deadline, retries, breaker, concurrency cap, error mapping
        │ Transport.get(path, params, headers, connect_timeout=, read_timeout=)
        ▼
    HttpxTransport (default) | AiohttpTransport (`oms-gateway[aiohttp]`, OMS_UPSTREAM_CLIENT)
        │ raw bytes, as they arrive
        ▼
    BoundedBody: wire bytes and decoded bytes each capped at `upstream_max_body_bytes`

A transport raises only `TransportTimeout`, `ConnectionFailed` (both `TransportFailure`, in
gateway/errors.py's tree) or `BodyRefused`; whatever its library calls a failure is mapped to one
of these, so the layer above never sees a library's exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import time
import zlib
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol, Self

import brotli

if TYPE_CHECKING:
    from gateway.settings import Settings

# Only encodings whose decoded size can be bounded step by step (zlib's `max_length`, brotli's
# `output_buffer_limit`); an answer in any other encoding is refused.
ACCEPT_ENCODING = "gzip, deflate, br"

Params = Mapping[str, str | int]


class Reply(NamedTuple):
    """One HTTP answer: `headers` look names up case-insensitively; `body` is decoded. A named
    tuple: made once per upstream attempt, for half a frozen dataclass's cost."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class BodyRefused(Exception):
    """The body broke a bound (size on the wire, decoded size, encoding); the connection was
    dropped rather than read to its end. The message says which bound, never the body."""


class ClosesOnExit:
    """`async with transport:` closes it; each transport defines only `aclose`."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Transport(Protocol):
    async def get(
        self,
        path: str,
        params: Params | None,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Reply:
        """GET `path` under the upstream base URL; the whole body is read before returning."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def open_transport(settings: Settings) -> Transport:
    """The transport `settings.upstream_client` names; use it as an async context manager."""
    if settings.upstream_client == "aiohttp":
        try:
            from gateway.upstream.transports.aiohttp_transport import AiohttpTransport
        except ImportError as exc:
            raise RuntimeError(
                "OMS_UPSTREAM_CLIENT=aiohttp needs the extra: pip install 'oms-gateway[aiohttp]'"
            ) from exc
        return AiohttpTransport(settings)
    from gateway.upstream.transports.httpx_transport import HttpxTransport

    return HttpxTransport(settings)


class BoundedBody:
    """A body collected as it arrives: decoded step by step, refused as soon as either its wire
    size or its decoded size passes `limit`. Each decoding step produces at most `limit + 1`
    bytes, so a compression bomb costs at most the cap in memory and CPU, never its full size
    (httpx and aiohttp inflate a whole network chunk at once: ~1000x for gzip, far more for br)."""

    __slots__ = ("_chunks", "_decoder", "_limit", "_size", "_wire")

    def __init__(self, encoding: str | None, limit: int, declared: int | None = None) -> None:
        self._limit = limit
        if declared is not None and declared > limit:
            raise BodyRefused(f"a declared length of {declared} bytes, over {limit}")
        self._chunks: list[bytes] = []
        self._size = 0
        self._wire = 0
        self._decoder = _decoder(encoding)

    def feed(self, chunk: bytes) -> None:
        self._wire += len(chunk)
        if self._wire > self._limit:
            self._refuse(f"a body over {self._limit} bytes")
        if self._decoder is None:
            self._add(chunk)
        else:
            self._decoder.feed(chunk, self)

    def finish(self) -> bytes:
        if self._decoder is not None:
            self._decoder.finish(self)
        return b"".join(self._chunks)

    def _refuse(self, reason: str) -> None:
        # The traceback keeps these frames (and so this body) alive until it is collected: let
        # go of the bytes now, and have the freed pages handed back to the OS.
        self._chunks.clear()
        _trimmer.schedule()
        raise BodyRefused(reason)

    def room(self) -> int:
        """How many more decoded bytes fit, plus one so that passing the cap shows."""
        return self._limit - self._size + 1

    def _add(self, data: bytes) -> None:
        if not data:
            return
        self._size += len(data)
        if self._size > self._limit:
            del data  # kept alive by the traceback's frames otherwise
            self._refuse(f"a body that decodes to over {self._limit} bytes")
        self._chunks.append(data)


class _Trimmer:
    """Hands the heap pages a refused body freed back to the OS (glibc's `malloc_trim`).

    A body is read in 64 KiB chunks, below glibc's mmap threshold, so a few concurrent refused
    bodies grow the heap by the cap each, and free() keeps those pages: RSS stayed ~150 MiB up
    after a hostile soak with 16 live MiB. One trim, at most once per `interval` seconds and in
    a worker thread (~30 ms for 200 MiB), brings it back (bench/soak.py, hostile). A no-op where
    libc has no `malloc_trim` (musl, macOS)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._pending = False
        self._since = 0.0
        self._trim: Callable[[int], int] | None = None
        with contextlib.suppress(OSError):
            # The process's own symbols: libc is among them, and no `ldconfig` is spawned.
            self._trim = getattr(ctypes.CDLL(None), "malloc_trim", None)

    def schedule(self) -> None:
        # A trim still pending on a loop that stopped since (a test's server) must not block
        # the next one: a schedule older than two intervals counts as gone.
        now = time.monotonic()
        if self._trim is None or (self._pending and now - self._since < 2 * self.interval):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending, self._since = True, now
        loop.call_later(self.interval, self._run, loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending = False
        if self._trim is not None:
            loop.run_in_executor(None, self._trim, 0)


_trimmer = _Trimmer()


class _Zlib:
    """gzip, or deflate in either of its wild forms (zlib-wrapped or raw), as httpx accepts."""

    __slots__ = ("_raw_fallback", "_z")

    def __init__(self, wbits: int, raw_fallback: bool) -> None:
        self._z = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback

    def feed(self, data: bytes, body: BoundedBody) -> None:
        try:
            body._add(self._z.decompress(data, body.room()))
            while self._z.unconsumed_tail:
                body._add(self._z.decompress(self._z.unconsumed_tail, body.room()))
        except zlib.error as exc:
            if not self._raw_fallback:
                raise BodyRefused("a body that does not decompress") from exc
            # Some servers send raw deflate without the zlib header: start again as raw.
            self._raw_fallback = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            self.feed(data, body)
            return
        self._raw_fallback = False

    def finish(self, body: BoundedBody) -> None:
        try:
            body._add(self._z.flush())
        except zlib.error as exc:
            raise BodyRefused("a body that does not decompress") from exc


class _Brotli:
    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d = brotli.Decompressor()

    def feed(self, data: bytes, body: BoundedBody) -> None:
        try:
            body._add(self._d.process(data, output_buffer_limit=body.room()))
            while not self._d.can_accept_more_data():
                body._add(self._d.process(b"", output_buffer_limit=body.room()))
        except brotli.error as exc:
            raise BodyRefused("a body that does not decompress") from exc

    def finish(self, body: BoundedBody) -> None:
        return None


def _decoder(encoding: str | None) -> _Zlib | _Brotli | None:
    name = (encoding or "").strip().lower()
    if name in ("", "identity"):
        return None
    if name == "gzip":
        return _Zlib(16 + zlib.MAX_WBITS, raw_fallback=False)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    if name == "br":
        return _Brotli()
    raise BodyRefused("a body in an encoding it was not offered")
