"""Upstream bodies are bounded: a hostile OMS cannot fill the gateway's memory or hold its loop.

Each attack runs against a gateway whose cap is 1 MiB while the fake OMS sends 64 MiB (a
compression bomb, a declared huge body, a chunked body that never ends, a huge string field):
the call fails as UPSTREAM_BAD_RESPONSE at once, is not retried, the fake sees its connection
dropped long before the end, and a legitimate request is served meanwhile. Memory (RSS) is
measured in bench/soak.py, not here.
"""

from __future__ import annotations

import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import brotli
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.settings import Settings
from gateway.upstream.transports import BodyRefused, BoundedBody
from tests.conftest import AUTH

EACH_UPSTREAM_CLIENT = True

CAP = 1024 * 1024
ATTACK = 64 * CAP
DETAIL = "{ orderItem(id: 2) { id price attributes } }"
LIST = "{ orderItems(first: 3) { nodes { id } } }"
LIST_DATA = {"orderItems": {"nodes": [{"id": "1"}, {"id": "2"}, {"id": "3"}]}}
DETAIL_PATH = "/api/v1/oms/order_items/2/"

ATTACKS = {
    "gzip bomb": Faults(kind="bomb", encoding="gzip", size=ATTACK),
    "deflate bomb": Faults(kind="bomb", encoding="deflate", size=ATTACK),
    "br bomb": Faults(kind="bomb", encoding="br", size=ATTACK),
    "huge declared body": Faults(kind="huge_body", size=ATTACK),
    "endless chunked body": Faults(kind="endless"),
    "huge string field": Faults(kind="huge_string", size=ATTACK),
}


def settled(faults: Faults, timeout: float = 5.0) -> int:
    """What the fake streamed once it stopped streaming (it stops when the peer drops it)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        if faults.streamed == last:
            return last
        last = faults.streamed
        time.sleep(0.2)
    raise AssertionError(f"the fake was still streaming after {timeout} s ({last} bytes)")


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_hostile_body_is_refused_at_once_while_others_are_served(make_gateway, upstream, attack):
    gateway = make_gateway(upstream_max_body_bytes=CAP)
    template = ATTACKS[attack]
    faults = Faults(
        kind=template.kind,
        encoding=template.encoding,
        size=template.size,
        endpoints=frozenset({"detail"}),
    )
    upstream.fake.faults = faults

    with ThreadPoolExecutor(2) as pool:
        attacked = pool.submit(gateway.post, DETAIL)
        legit = [gateway.post(LIST) for _ in range(3)]
        response = attacked.result(timeout=30)  # a hang guard

    assert [r.status_code for r in legit] == [200] * 3
    assert all(r.json() == {"data": LIST_DATA} for r in legit)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"orderItem": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}
    assert str(CAP) in error["message"] and "xxxx" not in response.text
    assert upstream.calls("detail") == 1  # a refused body is not retried
    # The connection was dropped: the fake stopped long before the end of its 64 MiB.
    assert settled(faults) < ATTACK // 4


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_compressed_answers_are_decoded(make_gateway, upstream, encoding):
    gateway = make_gateway()
    upstream.fake.faults = Faults(kind="encoded", encoding=encoding)
    assert gateway.data("{ orderItem(id: 2) { id price } }") == {
        "orderItem": {"id": "2", "price": "415.43"}
    }
    assert gateway.data(LIST) == LIST_DATA


def test_the_cap_is_exact(make_gateway, upstream, http):
    size = len(http.get(upstream.url + DETAIL_PATH, headers=AUTH).content)
    at_cap = make_gateway(upstream_max_body_bytes=size)
    assert at_cap.data("{ orderItem(id: 2) { id } }") == {"orderItem": {"id": "2"}}
    below = make_gateway(upstream_max_body_bytes=size - 1)
    [error] = below.query("{ orderItem(id: 2) { id } }")["errors"]
    assert error["extensions"] == {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}


def test_the_default_cap_is_far_above_the_largest_page(make_gateway, upstream, http):
    page = http.get(upstream.url + "/api/v1/oms/order_items/?limit=100", headers=AUTH)
    gateway = make_gateway()
    assert 20 * len(page.content) < Settings().upstream_max_body_bytes
    query = "{ orderItems(first: 100) { nodes { id product { name } state { name } } } }"
    assert len(gateway.data(query)["orderItems"]["nodes"]) == 100


# --- BoundedBody, the decoder both transports share --------------------------------------------

PAYLOAD = b'{"id": 1, "note": "' + b"abc" * 1000 + b'"}'


def compress(encoding: str, data: bytes) -> bytes:
    if encoding == "br":
        return brotli.compress(data)
    wbits = {"gzip": 31, "deflate": 15, "raw deflate": -15}[encoding]
    z = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return z.compress(data) + z.flush()


def feed(body: BoundedBody, data: bytes, step: int = 7) -> bytes:
    for start in range(0, len(data), step):
        body.feed(data[start : start + step])
    return body.finish()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate", "br"])
def test_bounded_body_decodes_up_to_the_cap_and_not_one_byte_more(encoding):
    wire = compress(encoding, PAYLOAD)
    name = "deflate" if encoding == "raw deflate" else encoding
    assert feed(BoundedBody(name, len(PAYLOAD)), wire) == PAYLOAD
    with pytest.raises(BodyRefused, match="decodes to over"):
        feed(BoundedBody(name, len(PAYLOAD) - 1), wire)


def test_bounded_body_refuses_a_bomb_after_one_step_of_output():
    wire = compress("gzip", b" " * (256 * CAP))  # 256 MiB of spaces in ~250 KB
    body = BoundedBody("gzip", CAP)
    with pytest.raises(BodyRefused):
        body.feed(wire)
    assert body.room() <= 1  # it stopped right past the cap, not at 256 MiB


@pytest.mark.parametrize(
    ("encoding", "declared", "data", "reason"),
    [
        (None, CAP + 1, b"", "declared length"),
        (None, None, b" " * (CAP + 1), "body over"),
        ("zstd", None, b"x", "encoding"),
        ("gzip", None, b"not gzip at all", "does not decompress"),
        ("br", None, b"not brotli at all", "does not decompress"),
    ],
)
def test_bounded_body_refusals(encoding, declared, data, reason):
    with pytest.raises(BodyRefused, match=reason):
        feed(BoundedBody(encoding, CAP, declared), data, step=CAP)


def test_identity_body_is_returned_whole():
    assert feed(BoundedBody("identity", len(PAYLOAD), len(PAYLOAD)), PAYLOAD) == PAYLOAD
