"""Fault injection: every upstream fault gets its exact code, in bounded work, then recovery.

Each case runs on a fresh gateway (the circuit breaker is per app), against the shared fake OMS
whose `faults` knob makes calls misbehave; clearing the knob must bring the same query back.
The gateway's upstream runs on a fake clock: what is asserted is the attempts made and the waits
requested between them, never how long the machine took.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import FakeOms, Faults, create_fake_app
from tests.conftest import AUTH, free_port, serve
from tests.support import FakeClock

# Run the tests that use `make_gateway` once per upstream transport (tests/conftest.py).
EACH_UPSTREAM_CLIENT = True

DETAIL = "{ orderItem(id: 2) { id price } }"
LIST = "{ orderItems(first: 3) { nodes { id } } }"
EXPECTED = {
    DETAIL: {"orderItem": {"id": "2", "price": "415.43"}},
    LIST: {"orderItems": {"nodes": [{"id": "1"}, {"id": "2"}, {"id": "3"}]}},
}
ENDPOINT = {DETAIL: "detail", LIST: "list-simple"}


def the_error(response):
    """The single error of a failed root field; the gateway itself must not fail (no 5xx)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None or all(v is None for v in body["data"].values()), body
    [error] = body["errors"]
    return error


def assert_recovers(gateway, upstream, query, **kw):
    upstream.fake.faults = Faults()
    response = gateway.post(query, **kw)
    assert response.status_code == 200
    assert response.json() == {"data": EXPECTED[query]}


# Seconds each retry waited: `None` for the default backoff (full jitter, capped at 0.05 s for
# the first retry and 0.1 s for the second).
BACKOFF = None

# (faults, gateway settings, code, upstream status, the waits between its attempts)
CASES = {
    "500": (Faults(kind="status", status=500), {}, ErrorCode.UPSTREAM_ERROR, 500, []),
    "502": (
        Faults(kind="status", status=502),
        {},
        ErrorCode.UPSTREAM_ERROR,
        502,
        [BACKOFF, BACKOFF],
    ),
    "503 Retry-After 1": (
        Faults(kind="status", status=503, retry_after="1"),
        {},
        ErrorCode.UPSTREAM_ERROR,
        503,
        [1.0, 1.0],  # each retry after the one second the upstream asked for
    ),
    "429": (
        Faults(kind="status", status=429, retry_after="0"),
        {},
        ErrorCode.UPSTREAM_ERROR,
        429,
        [0, 0],
    ),
    "403": (Faults(kind="status", status=403), {}, ErrorCode.FORBIDDEN, 403, []),
    # The read timeout (0.3 s) cuts a 2 s hang that would otherwise end in a normal answer.
    "hang past the read timeout": (
        Faults(kind="hang", hang=2.0),
        {"upstream_read_timeout": 0.3},
        ErrorCode.UPSTREAM_TIMEOUT,
        None,
        [],
    ),
    "malformed JSON": (Faults(kind="malformed"), {}, ErrorCode.UPSTREAM_BAD_RESPONSE, None, []),
    "truncated JSON": (Faults(kind="truncated"), {}, ErrorCode.UPSTREAM_BAD_RESPONSE, None, []),
    "mis-shaped JSON": (Faults(kind="misshaped"), {}, ErrorCode.UPSTREAM_BAD_RESPONSE, None, []),
    "wrong content type": (
        Faults(kind="content_type"),
        {},
        ErrorCode.UPSTREAM_BAD_RESPONSE,
        None,
        [],
    ),
}


def assert_waits(clock, waits):
    """The waits the gateway requested between attempts, `BACKOFF` for a jittered backoff."""
    assert len(clock.sleeps) == len(waits), clock.sleeps
    for retry, (slept, wait) in enumerate(zip(clock.sleeps, waits, strict=True), 1):
        if wait is BACKOFF:
            assert 0 <= slept <= 0.05 * 2 ** (retry - 1)
        else:
            assert slept == wait


@pytest.mark.parametrize("query", [DETAIL, LIST], ids=["detail", "list"])
@pytest.mark.parametrize("case", list(CASES))
def test_fault_gets_its_code_in_bounded_work_then_recovers(make_gateway, upstream, case, query):
    faults, settings, code, status, waits = CASES[case]
    clock = FakeClock()
    gateway = make_gateway(clock=clock, **settings)
    upstream.fake.faults = faults
    response = gateway.post(query)
    error = the_error(response)
    assert error["extensions"]["code"] == code
    assert error["extensions"].get("upstreamStatus") == status
    assert upstream.calls(ENDPOINT[query]) == len(waits) + 1
    assert_waits(clock, waits)
    text = response.text
    assert "Injected" not in text and "Bad Gateway" not in text and "Traceback" not in text
    assert_recovers(gateway, upstream, query)


@pytest.mark.parametrize("query", [DETAIL, LIST], ids=["detail", "list"])
def test_latency_is_waited_for_not_failed(make_gateway, upstream, query):
    clock = FakeClock()
    gateway = make_gateway(clock=clock)
    upstream.fake.faults = Faults(latency=0.4)
    response = gateway.post(query)
    assert response.status_code == 200
    assert response.json() == {"data": EXPECTED[query]}
    assert upstream.calls(ENDPOINT[query]) == 1  # one slow answer, neither cut nor retried
    assert clock.sleeps == []


@pytest.mark.parametrize("query", [DETAIL, LIST], ids=["detail", "list"])
def test_rejected_token_is_unauthenticated_then_a_good_token_works(make_gateway, upstream, query):
    clock = FakeClock()
    gateway = make_gateway(clock=clock)
    response = gateway.post(query, headers={"Authorization": "Token revoked-1234"})
    error = the_error(response)
    assert error["extensions"] == {"code": ErrorCode.UNAUTHENTICATED, "upstreamStatus": 401}
    assert upstream.calls() == 1  # a 401 is never retried
    assert clock.sleeps == []
    assert "revoked-1234" not in response.text
    assert_recovers(gateway, upstream, query, headers=AUTH)


@pytest.mark.parametrize("query", [DETAIL, LIST], ids=["detail", "list"])
def test_connection_refused_is_unavailable_then_recovers_when_the_oms_starts(make_gateway, query):
    port = free_port()
    clock = FakeClock()
    gateway = make_gateway(clock=clock, upstream_url=f"http://127.0.0.1:{port}")
    response = gateway.post(query)
    error = the_error(response)
    assert error["extensions"] == {"code": ErrorCode.UPSTREAM_UNAVAILABLE}
    assert str(port) not in error["message"]
    assert_waits(clock, [BACKOFF, BACKOFF])  # a refused connect is safe to repeat
    fake = FakeOms()
    with serve(create_fake_app(fake), port):  # a port chosen beforehand, to start late
        response = gateway.post(query)
        assert response.json() == {"data": EXPECTED[query]}
        assert sum(fake.calls.values()) == 1


def test_a_fault_on_some_calls_fails_only_what_depends_on_them(make_gateway, upstream):
    gateway = make_gateway(upstream_retries=0)
    upstream.fake.faults = Faults(kind="status", status=500, endpoints=frozenset({"list-simple"}))
    query = "{ one: orderItem(id: 2) { id price } many: orderItemsByIds(ids: [4, 5]) { id } }"
    assert gateway.data(query) == {
        "one": {"id": "2", "price": "415.43"},
        "many": [{"id": "4"}, {"id": "5"}],
    }
    body = gateway.query("{ orderItem(id: 2) { id } " + LIST[1:])
    # orderItems is nullable: its failure nulls only itself.
    assert body["data"] == {"orderItem": {"id": "2"}, "orderItems": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == [ErrorCode.UPSTREAM_ERROR]


def test_faults_stop_after_times(make_gateway, upstream):
    # The fake's `times` knob (used by the retry tests): only the first call gets the fault.
    gateway = make_gateway()
    upstream.fake.faults = Faults(kind="status", status=503, retry_after="0", times=1)
    assert gateway.data(DETAIL) == EXPECTED[DETAIL]
    assert upstream.calls("detail") == 2


@contextlib.contextmanager
def raw_server(behaviour):
    """A TCP server whose handler misbehaves below HTTP; yields (url, connections accepted)."""
    accepted = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            accepted.append(1)
            self.request.settimeout(5)
            with contextlib.suppress(OSError):
                self.request.recv(65536)  # the request head
                behaviour(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", accepted
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def reset(sock):
    # SO_LINGER 0: close with a RST instead of a FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def dribble(sock):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    sock.sendall(head)
    for _ in range(50):  # a byte every 0.1 s: each read is quick, the body never ends
        sock.sendall(b" ")
        time.sleep(0.1)


def cut_mid_body(sock):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    sock.sendall(head + b'{"id": 2, ')


def not_http(sock):
    sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


@pytest.mark.parametrize(
    ("behaviour", "attempts"),
    [(lambda sock: None, 3), (reset, 3), (cut_mid_body, 3), (not_http, 3)],
    ids=["closed without an answer", "reset", "cut mid-body", "not HTTP"],
)
def test_a_dropped_connection_is_retried_then_unavailable(make_gateway, behaviour, attempts):
    with raw_server(behaviour) as (url, accepted):
        clock = FakeClock()
        gateway = make_gateway(clock=clock, upstream_url=url)
        error = the_error(gateway.post(DETAIL))
        assert error["extensions"] == {"code": ErrorCode.UPSTREAM_UNAVAILABLE}
        assert len(accepted) == attempts  # a request that never got an answer is safe to repeat
        assert_waits(clock, [BACKOFF] * (attempts - 1))


@contextlib.contextmanager
def unanswered_connects():
    """A port whose accept queue is full: the kernel drops further SYNs, so connecting hangs."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(3):  # fill the queue (a backlog of 0 holds one) and then some
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"


def test_a_connect_that_hangs_is_a_timeout_retried_like_a_refusal(make_gateway):
    with unanswered_connects() as url:
        clock = FakeClock()
        gateway = make_gateway(clock=clock, upstream_url=url, upstream_connect_timeout=0.3)
        assert the_error(gateway.post(DETAIL))["extensions"] == {"code": ErrorCode.UPSTREAM_TIMEOUT}
        # three attempts: nothing was sent, so each may be repeated
        assert_waits(clock, [BACKOFF, BACKOFF])


def test_a_body_that_never_ends_is_cut_by_the_total_timeout(make_gateway):
    with raw_server(dribble) as (url, accepted):
        clock = FakeClock()
        gateway = make_gateway(
            clock=clock, upstream_url=url, upstream_read_timeout=0.5, upstream_total_timeout=1.0
        )
        # A byte every 0.1 s keeps each read under its 0.5 s timeout; left alone the body ends
        # short after 5 s, a transport failure that would be retried. Only the 1 s total cuts
        # it, as a timeout that is not repeated: the request was sent.
        assert the_error(gateway.post(DETAIL))["extensions"] == {"code": ErrorCode.UPSTREAM_TIMEOUT}
        assert len(accepted) == 1
        assert clock.sleeps == []
