"""The HTTP server: uvicorn with a protocol that puts a time and size limit on every client phase.

uvicorn bounds only the idle time between keep-alive requests. Its httptools protocol waits
forever for headers and for a body, buffers headers of any size, and waits forever for a client
that stops reading its response. `GuardedHttpProtocol` adds, per connection:

    connect / first byte of a request ─ header_timeout ─> headers complete ─ body_timeout ─>
        body complete ─ (the app runs) ─> response; each stall in writing it ≤ write_timeout

plus a cap on the bytes of a request head (431), and a cap on connections that are still
sending a request, per process and per client address (503), so slow senders cannot hold the
sockets that legitimate clients need. The app itself counts execution slots only for requests
whose body has arrived (gateway/server/shedding.py). httptools comes with `uvicorn[standard]`.
It also sends a response's head with its first body bytes in one write (`HeadWithBody`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from gateway.errors import ErrorCode, error_body
from gateway.settings import Settings

_HEAD_END = b"\r\n\r\n"
# How early a deadline may be called passed: event loops run a timer up to their clock's
# resolution early, and waiting for the last millisecond would only spin.
_EARLY = 0.001


class ConnectionGate:
    """Connections receiving a request (headers or body), per process and per client address."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total_limit = total
        self.per_client_limit = per_client
        self.total = 0
        self.by_client: Counter[str] = Counter()

    def admits(self, client: str) -> bool:
        # .get: a Counter's missing key would cost a call to its __missing__
        return (
            self.total < self.total_limit and self.by_client.get(client, 0) < self.per_client_limit
        )

    def count(self, client: str) -> None:
        self.total += 1
        self.by_client[client] += 1

    def enter(self, client: str) -> bool:
        if not self.admits(client):
            return False
        self.count(client)
        return True

    def leave(self, client: str) -> None:
        self.total -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]  # keep the map as small as the connections


class GatewayConfig(uvicorn.Config):
    """uvicorn's config with the gateway's settings and the guarded protocol; picklable, so it
    also reaches `--workers` processes (each then counts its own connections)."""

    def __init__(self, app: Any, settings: Settings, **kwargs: Any) -> None:
        kwargs.setdefault("host", settings.host)
        kwargs.setdefault("port", settings.port)
        # The gateway writes its own access line (gateway.access); uvicorn's, at INFO, is never
        # shown, yet would still format the client address and path for every request.
        kwargs.setdefault("access_log", False)
        # uvicorn's ProxyHeadersMiddleware rewrites the scope's `client` and `scheme` from
        # X-Forwarded-For/-Proto for trusted peers: a middleware level and a header scan per
        # request, for two scope keys the gateway never reads (it answers the same either way).
        kwargs.setdefault("proxy_headers", False)
        super().__init__(
            app,
            http=GuardedHttpProtocol,
            ws="none",  # the gateway serves no WebSocket: an upgrade stays a plain request
            timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
            **kwargs,
        )
        self.settings = settings
        self.gate = ConnectionGate(
            settings.max_receiving_connections, settings.max_receiving_per_client
        )


def error_response(
    status: int, code: ErrorCode, message: str, *extra: tuple[bytes, bytes]
) -> bytes:
    """A complete HTTP/1.1 answer with a GraphQL-style error body that closes the connection."""
    body = error_body(code, message)
    head = [
        STATUS_LINE[status],
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
        *(name + b": " + value + b"\r\n" for name, value in extra),
        b"\r\n",
    ]
    return b"".join(head) + body


class HeadWithBody:
    """The transport a request's cycle writes through: its first write (the response head, or
    a `100 Continue`) waits for the next one, so a small answer leaves in one `writelines`
    (one send) instead of two. Whatever is held goes out at the end of the loop iteration at
    the latest, and before a close, so nothing waits on an app that is slow to send its body;
    the bytes on the wire are the same."""

    __slots__ = ("_transport", "_loop", "_held", "_first")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = data
            self._loop.call_soon(self.flush)
        elif self._held is not None:
            held, self._held = self._held, None
            self._transport.writelines((held, data))
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with time limits on headers, body and response writes,
    a request-head size limit, and the receiving-connections gate."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        if not isinstance(config, GatewayConfig):
            raise TypeError("GuardedHttpProtocol needs a gateway.server.protocol.GatewayConfig")
        self.settings = config.settings
        self.gate = config.gate
        self._peer = ""
        self._receiving = False  # a request is arriving: admitted by the gate
        self._counted = False  # and counted by it
        self._max_head = self.settings.max_header_bytes
        self._in_head = True  # the next bytes belong to a request head
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far, to find its end across reads
        # The header or body deadline, and what runs when it passes. One timer serves every
        # phase of every request on the connection: armed at or before the deadline, it arms
        # itself again for what is left when the phase moved on, so a keep-alive request
        # starts and stops no timer of its own (two per request, about 3.5 us, before).
        self._deadline: float | None = None
        self._on_deadline: Callable[[], None] | None = None
        # The phase the request is in (its deadline's callback), timed from the end of the read
        # that began it: a request that arrives whole in one read is never timed at all. Bound
        # once, so that `is` tells the phases apart.
        self._head_phase = self._head_timed_out
        self._body_phase = self._body_timed_out
        self._phase: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None

    # Connection lifetime
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else ""
        self._start_receiving()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._stop_receiving()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if not self._receiving:
            # A request begins. It is admitted now, but counted and timed only if it is still
            # arriving after this read: most requests come whole in one read, and counting and
            # timing them would be undone before anything else could run or look.
            if not self.gate.admits(self._peer):
                self._refuse_overloaded()
                return
            self._receiving = True
            self._phase = self._head_phase
        if self._in_head:  # add this read's share of the request head; 431 over the limit
            window = self._tail + data
            end = window.find(_HEAD_END)
            self._head_bytes += len(data) if end < 0 else end + len(_HEAD_END) - len(self._tail)
            self._tail = window[-3:]
            if self._head_bytes > self._max_head:
                self._refuse_large_head()
                return
        # The base's function, not super(): on Python 3.11 a zero-argument super() builds an
        # object and walks the MRO at every call, and the three callbacks run for every request.
        HttpToolsProtocol.data_received(self, data)
        if self._receiving and not self._counted:
            self.gate.count(self._peer)
            self._counted = True
        if self._phase is not self._on_deadline:  # a phase began in this read
            self._arm_phase()

    # Parser callbacks
    def on_headers_complete(self) -> None:
        self._in_head = False
        self._phase = self._body_phase
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not None:  # None only for an upgrade, which ws="none" never takes
            self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        self._stop_timer()
        self._stop_receiving()
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    # Writing: a client that stops reading must not hold the response (and its slot) forever.
    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(
                self.settings.write_timeout, self.transport.abort
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    # Helpers
    def _start_receiving(self) -> bool:
        """A connection is open: count it and start the header clock."""
        if not self.gate.enter(self._peer):
            self._refuse_overloaded()
            return False
        self._receiving = self._counted = True
        self._phase = self._head_phase
        self._arm_phase()
        return True

    def _stop_receiving(self) -> None:
        self._receiving = False
        if self._counted:
            self._counted = False
            self.gate.leave(self._peer)

    def _refuse_overloaded(self) -> None:
        message = "Too many connections are sending requests; retry shortly."
        self._refuse(error_response(503, ErrorCode.OVERLOADED, message, (b"retry-after", b"1")))

    def _refuse_large_head(self) -> None:
        message = f"The request headers exceed {self._max_head} bytes."
        self._refuse(error_response(431, ErrorCode.HEADERS_TOO_LARGE, message))

    def _head_timed_out(self) -> None:
        message = f"The request headers did not arrive within {self.settings.header_timeout} s."
        self._refuse(error_response(408, ErrorCode.REQUEST_TIMEOUT, message))

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        # A pipelined request waits behind an answer still being written: no 408 mid-answer.
        if cycle is not None and not cycle.response_started and not self.pipeline:
            # The app sees a disconnect (and its answer is dropped); the client gets a 408.
            cycle.disconnected = True
            cycle.message_event.set()
            message = f"The request body did not arrive within {self.settings.body_timeout} s."
            self._refuse(error_response(408, ErrorCode.REQUEST_TIMEOUT, message))
        else:
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        self._stop_timer()
        self._stop_receiving()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _arm_phase(self) -> None:
        """Start the clock of the phase the request is in now."""
        phase = self._phase
        if phase is None:
            self._stop_timer()
        elif phase is self._head_phase:
            self._arm(self.settings.header_timeout, phase)
        else:
            self._arm(self.settings.body_timeout, phase)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        deadline = self.loop.time() + seconds
        self._deadline = deadline
        self._on_deadline = callback
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        deadline, callback = self._deadline, self._on_deadline
        if deadline is None or callback is None:
            return  # no phase is timed now; the next one arms a timer again
        if deadline - self.loop.time() > _EARLY:
            # Armed for an earlier deadline of a phase that has ended: wait for the rest.
            self._timer = self.loop.call_at(deadline, self._check_deadline)
            return
        self._stop_timer()
        callback()

    def _stop_timer(self) -> None:
        """No phase is timed any more (the timer, if any, finds nothing to do when it runs)."""
        self._deadline = None
        self._on_deadline = None
        self._phase = None


def make_server(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Server:
    """A uvicorn server for `app` with the gateway's protocol and limits."""
    return uvicorn.Server(GatewayConfig(app, settings, **kwargs))
