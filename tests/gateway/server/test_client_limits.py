"""Slow and oversized clients against the real server: time limits, receiving caps, header sizes.

Every attack opens real sockets on 127.0.0.1 against the gateway as `oms-gateway serve` runs it
(tests/conftest.py `serve_gateway`). Timeouts are configured tiny and every wait is bounded with
a wide margin, so a busy machine slows these tests down but cannot make them fail.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.server.protocol import make_server
from gateway.settings import Settings
from tests.conftest import AUTH, Gateway, free_port, run_server
from tests.queries import ITEM_FIELDS

DETAIL = "{ orderItem(id: 1) { id } }"
PATIENCE = 10.0  # the longest any single wait in this module may take


def address(gateway: Gateway) -> tuple[str, int]:
    parts = urlsplit(gateway.url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


@contextlib.contextmanager
def sockets(
    gateway: Gateway, count: int, source: str = "127.0.0.1"
) -> Iterator[list[socket.socket]]:
    """`count` connections to the gateway from `source` (any 127/8 address is this machine)."""
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.settimeout(PATIENCE)
            sock.bind((source, 0))
            sock.connect(address(gateway))
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read until the server closes: the status, headers and body of its (only) answer."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def code_of(body: bytes) -> str:
    code: str = json.loads(body)["errors"][0]["extensions"]["code"]
    return code


def post_head(length: int, extra: str = "") -> bytes:
    return (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH['Authorization']}\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode()


def legit(gateway: Gateway, source: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=PATIENCE, trust_env=False) as client:
        return client.post(f"{gateway.url}/graphql", json={"query": DETAIL}, headers=AUTH)


def served(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"data": {"orderItem": {"id": "1"}}}


# --- time limits -------------------------------------------------------------------------------


def test_headers_sent_a_line_at_a_time_are_cut_at_the_header_timeout(make_gateway, upstream):
    # A deadline, not an idle timeout: the lines keep coming until the gateway hangs up.
    gateway = make_gateway(header_timeout=0.5)
    with sockets(gateway, 20) as socks:
        started = time.monotonic()
        for sock in socks:
            sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert served(legit(gateway))  # meanwhile the gateway serves others
        pending = set(socks)
        while pending and time.monotonic() - started < PATIENCE:
            readable, _, _ = select.select(list(pending), [], [], 0.1)
            for sock in readable:
                status, headers, body = answer(sock)
                assert (status, code_of(body), headers["connection"]) == (
                    408,
                    ErrorCode.REQUEST_TIMEOUT,
                    "close",
                )
                pending.discard(sock)
            for sock in pending:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow: 1\r\n")
        assert not pending, "still open while sending a header line every 0.1 s"
        assert time.monotonic() - started > 0.4
    assert upstream.calls() == 1


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(make_gateway):
    gateway = make_gateway(header_timeout=0.3)
    with sockets(gateway, 5) as socks:
        started = time.monotonic()
        for sock in socks:
            assert answer(sock)[0] == 408
        assert 0.25 < time.monotonic() - started < PATIENCE


def test_a_body_that_stops_is_cut_at_the_body_timeout(make_gateway, upstream, caplog):
    gateway = make_gateway(body_timeout=0.5)
    with sockets(gateway, 10) as socks:
        started = time.monotonic()
        for sock in socks:
            sock.sendall(post_head(1000) + b"{")
        assert served(legit(gateway))
        for sock in socks:
            status, _, body = answer(sock)
            assert (status, code_of(body)) == (408, ErrorCode.REQUEST_TIMEOUT)
        assert 0.4 < time.monotonic() - started < PATIENCE
    # The app saw a disconnect, not an error: nothing is logged as unhandled.
    assert not [r for r in caplog.records if "unhandled" in r.getMessage()]
    assert upstream.calls() == 1


def test_a_body_refused_early_still_has_to_end_within_the_body_timeout(make_gateway):
    # 413 from Content-Length alone; the unread body must not keep the connection for ever.
    gateway = make_gateway(body_timeout=0.5, keep_alive_timeout=60)
    with sockets(gateway, 1) as (sock,):
        sock.sendall(post_head(10**6) + b"{")
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        started = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""
        assert time.monotonic() - started < PATIENCE


def whole_request(sock: socket.socket) -> None:
    """One request in one write, answered, the connection kept open."""
    body = json.dumps({"query": DETAIL}).encode()
    sock.sendall(post_head(len(body)) + body)
    reply = b""
    while not reply.endswith(b'{"data":{"orderItem":{"id":"1"}}}'):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {reply!r}"
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")


def test_a_keep_alive_request_whose_head_stalls_is_cut_at_the_header_timeout(make_gateway):
    # A request that arrives whole in one read is never timed; one that does not still is.
    gateway = make_gateway(header_timeout=0.5, keep_alive_timeout=60)
    with sockets(gateway, 1) as (sock,):
        for _ in range(3):
            whole_request(sock)
        started = time.monotonic()
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        status, _, body = answer(sock)
        assert (status, code_of(body)) == (408, ErrorCode.REQUEST_TIMEOUT)
        assert 0.4 < time.monotonic() - started < PATIENCE


def test_a_keep_alive_request_whose_body_stalls_is_cut_at_the_body_timeout(make_gateway):
    gateway = make_gateway(body_timeout=0.5, keep_alive_timeout=60)
    with sockets(gateway, 1) as (sock,):
        for _ in range(3):
            whole_request(sock)
        started = time.monotonic()
        sock.sendall(post_head(1000))  # the head alone: the body's clock starts with this read
        time.sleep(0.1)
        sock.sendall(b"{")
        status, _, body = answer(sock)
        assert (status, code_of(body)) == (408, ErrorCode.REQUEST_TIMEOUT)
        assert 0.4 < time.monotonic() - started < PATIENCE


def test_an_idle_keep_alive_connection_is_closed(make_gateway):
    gateway = make_gateway(keep_alive_timeout=0.3)
    body = json.dumps({"query": DETAIL}).encode()
    with sockets(gateway, 1) as (sock,):
        sock.sendall(post_head(len(body)) + body)
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(65536) == b""  # closed by the server, not by our timeout
        assert 0.2 < time.monotonic() - started < 4  # uvicorn's own default is 5 s


def test_a_client_that_stops_reading_its_answer_is_dropped(make_gateway):
    # uvicorn alone keeps such a connection, and the whole answer in memory, for ever.
    gateway = make_gateway(write_timeout=0.5)
    aliases = " ".join(
        f"a{i}: orderItems(first: 300) {{ nodes {{ ...ItemFields }} }}" for i in range(25)
    )
    body = json.dumps({"query": "{ " + aliases + " }" + ITEM_FIELDS}).encode()  # a 13 MB answer
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(PATIENCE)
    with contextlib.closing(sock):
        sock.connect(address(gateway))
        sock.sendall(post_head(len(body)) + body)
        received = len(sock.recv(1024))  # the answer is being written...
        time.sleep(3)  # ...and not read for six times the write timeout
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(2**20):
                received += len(chunk)
    assert received < 10 * 2**20


def read_answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """`count` answers off a kept-alive connection: each one's status line and body."""
    data, answers = b"", []
    while len(answers) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head)
        if sep and length and len(rest) >= int(length[1]):
            answers.append((head.split(b"\r\n")[0], rest[: int(length[1])]))
            data = rest[int(length[1]) :]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(answers)} answers"
        data += chunk
    assert data == b""
    return answers


def test_pipelined_requests_are_answered_whole_and_in_order(make_gateway, upstream):
    # Each answer's head waits for its body (HeadWithBody); none may hold or reorder another's.
    gateway = make_gateway(keep_alive_timeout=60)
    requests = b""
    for item in (1, 2, 3):
        body = json.dumps({"query": f"{{ orderItem(id: {item}) {{ id }} }}"}).encode()
        requests += post_head(len(body)) + body
    with sockets(gateway, 1) as (sock,):
        for _ in range(2):  # and again on the same connection
            sock.sendall(requests)
            answers = read_answers(sock, 3)
            assert [status for status, _ in answers] == [b"HTTP/1.1 200 OK"] * 3
            assert [json.loads(body)["data"]["orderItem"]["id"] for _, body in answers] == [
                "1",
                "2",
                "3",
            ]


def test_a_100_continue_is_sent_before_the_body_comes(make_gateway, upstream):
    gateway = make_gateway(keep_alive_timeout=60)
    body = json.dumps({"query": DETAIL}).encode()
    with sockets(gateway, 1) as (sock,):
        for _ in range(2):
            sock.sendall(post_head(len(body), "Expect: 100-continue\r\n"))
            assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            [(status, answer_body)] = read_answers(sock, 1)
            assert status == b"HTTP/1.1 200 OK"
            assert json.loads(answer_body) == {"data": {"orderItem": {"id": "1"}}}


# --- receiving connections and execution slots -----------------------------------------------


def test_slow_bodies_hold_no_execution_slot(make_gateway, upstream):
    # Before: 16 half-sent bodies took all the slots and every other client got 503 OVERLOADED.
    gateway = make_gateway(max_inflight_operations=2, body_timeout=30)
    with sockets(gateway, 16) as socks:
        for sock in socks:
            sock.sendall(post_head(1000) + b"{")
        time.sleep(0.2)
        assert all(served(legit(gateway)) for _ in range(5))
    assert upstream.calls() == 5


@pytest.mark.parametrize("first_odd", [False, True])
def test_both_ways_in_take_their_slot_from_one_count(make_gateway, upstream, first_odd):
    """The usual request enters at the app's front door; one whose Host is an allowed name in
    upper case (which starlette accepts) goes through the whole middleware stack. With one
    slot, an operation that came in either way sheds one that comes in the other."""
    gateway = make_gateway(max_inflight_operations=1)
    odd = {**AUTH, "Host": f"LOCALHOST:{urlsplit(gateway.url).port}"}
    hold = threading.Event()
    upstream.fake.faults = Faults(hold=hold)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(gateway.post, DETAIL, headers=odd if first_odd else AUTH)
            deadline = time.monotonic() + PATIENCE
            while upstream.fake.in_flight < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            shed = gateway.post(DETAIL, headers=AUTH if first_odd else odd)
            hold.set()
            assert (shed.status_code, code_of(shed.content)) == (503, ErrorCode.OVERLOADED)
            assert first.result(PATIENCE).json() == {"data": {"orderItem": {"id": "1"}}}
    finally:
        hold.set()
    assert gateway.post(DETAIL, headers=odd).json() == {"data": {"orderItem": {"id": "1"}}}
    assert upstream.calls() == 2


def test_connections_still_sending_are_capped_per_client_address(make_gateway):
    gateway = make_gateway(max_receiving_per_client=4, max_receiving_connections=100)
    with sockets(gateway, 4) as held, sockets(gateway, 2) as refused:
        for sock in refused:  # the fifth and sixth from one address: refused at once
            status, headers, body = answer(sock)
            assert (status, code_of(body), headers["retry-after"]) == (
                503,
                ErrorCode.OVERLOADED,
                "1",
            )
        assert served(legit(gateway, source="127.0.0.2"))  # another address is served
        for sock in held:
            sock.sendall(post_head(2) + b"{}")  # the held ones complete and are answered
            assert sock.recv(65536).startswith(b"HTTP/1.1 400")
        assert served(legit(gateway))  # their address has room again


def test_whole_requests_on_keep_alive_connections_leave_the_count_as_they_found_it(make_gateway):
    # Requests that arrive whole are admitted but never counted; ones still arriving are.
    gateway = make_gateway(max_receiving_per_client=2, max_receiving_connections=100)
    with sockets(gateway, 2) as idle:
        for _ in range(3):
            for sock in idle:
                whole_request(sock)  # both connections idle again: nothing held
        idle[0].sendall(b"POST /graphql HTTP/1.1\r\n")  # holds one place...
        with sockets(gateway, 1) as held, sockets(gateway, 1) as (third,):
            assert code_of(answer(third)[2]) == ErrorCode.OVERLOADED  # ...a new one the other
            assert select.select(held + idle[:1], [], [], 0.3)[0] == []  # neither refused
            idle[1].sendall(b"POST /graphql HTTP/1.1\r\n")
            assert code_of(answer(idle[1])[2]) == ErrorCode.OVERLOADED


def test_connections_still_sending_are_capped_per_server(make_gateway):
    gateway = make_gateway(max_receiving_per_client=3, max_receiving_connections=5)
    with sockets(gateway, 3, "127.0.0.3") as _a, sockets(gateway, 2, "127.0.0.4") as _b:
        with sockets(gateway, 1, "127.0.0.5") as (late,):
            assert code_of(answer(late)[2]) == ErrorCode.OVERLOADED
    assert served(legit(gateway, source="127.0.0.5"))  # once they are gone, room again


# --- header sizes --------------------------------------------------------------------------------


def test_a_huge_authorization_is_cut_before_it_is_buffered(make_gateway, upstream):
    gateway = make_gateway(max_header_bytes=16384)
    with sockets(gateway, 1) as (sock,):
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token ")
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < 8 * 2**20:  # 8 MB, unless the server hangs up first
                sock.sendall(b"a" * 65536)
                sent += 65536
        status, _, body = answer(sock)
        assert (status, code_of(body)) == (431, ErrorCode.HEADERS_TOO_LARGE)
        assert sent < 8 * 2**20
    assert upstream.calls() == 0


@pytest.mark.parametrize("size", [4097, 16000])
def test_an_authorization_over_its_limit_is_431_and_never_forwarded(make_gateway, upstream, size):
    gateway = make_gateway(max_authorization_bytes=4096, max_header_bytes=32768)
    token = "Token " + "a" * (size - 6)
    response = gateway.post(DETAIL, headers={"Authorization": token})
    assert response.status_code == 431
    assert response.json()["errors"][0]["extensions"] == {"code": ErrorCode.HEADERS_TOO_LARGE}
    assert token not in response.text
    assert upstream.calls() == 0
    assert served(legit(gateway))


def test_many_headers_together_over_the_limit_are_431(make_gateway, upstream):
    gateway = make_gateway(max_header_bytes=8192)
    headers = {**AUTH, **{f"X-Filler-{i}": "f" * 100 for i in range(100)}}
    response = gateway.post(DETAIL, headers=headers)
    assert response.status_code == 431
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.HEADERS_TOO_LARGE
    assert upstream.calls() == 0


def test_forwarded_headers_leave_the_scope_as_the_socket_has_it():
    """The server takes no X-Forwarded-For/-Proto, even from a loopback peer (uvicorn trusts
    127.0.0.1 by default): the app sees the connection's own client and scheme."""
    seen: list[tuple[Any, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append((scope["client"], scope["scheme"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    settings = Settings(upstream_url="http://127.0.0.1:9")
    server = make_server(app, settings, host="127.0.0.1", port=free_port(), lifespan="off")
    with run_server(server) as url:
        forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        response = httpx.get(url, headers=forwarded, timeout=10)
    assert response.status_code == 204
    [(client, scheme)] = seen
    assert client[0] == "127.0.0.1" and scheme == "http"
