"""Compression for slow links: brotli or gzip by Accept-Encoding, only above a minimum size."""

from __future__ import annotations

import brotli
import httpx
import pytest

from tests.conftest import AUTH

LIST = {"query": "{ orderItems(first: 50) { nodes { id price product { name } } } }"}
SMALL = {"query": "{ orderItem(id: 1) { id } }"}


def raw_get(gateway, params, encoding):
    # httpx would decode on its own; read the bytes as they crossed the wire.
    with httpx.Client(trust_env=False) as client:
        with client.stream(
            "GET", f"{gateway.url}/graphql", params=params,
            headers={**AUTH, "Accept-Encoding": encoding},
        ) as response:  # fmt: skip
            return response, b"".join(response.iter_raw())


@pytest.mark.parametrize(
    ("accept", "encoding"), [("br", "br"), ("gzip", "gzip"), ("gzip, br", "br")]
)
def test_large_responses_are_compressed(gateway, accept, encoding):
    plain, plain_body = raw_get(gateway, LIST, "identity")
    packed, packed_body = raw_get(gateway, LIST, accept)
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == encoding
    decoded = (
        brotli.decompress(packed_body)
        if encoding == "br"
        else __import__("gzip").decompress(packed_body)
    )
    assert decoded == plain_body
    assert len(packed_body) * 3 < len(plain_body)


def test_small_responses_are_sent_as_they_are(gateway):
    response, _ = raw_get(gateway, SMALL, "gzip, br")
    assert "content-encoding" not in response.headers


def test_minimum_size_is_a_setting(make_gateway):
    gateway = make_gateway(compression_min_size=10)
    response, _ = raw_get(gateway, SMALL, "br")
    assert response.headers["content-encoding"] == "br"


@pytest.mark.parametrize(
    ("accepts", "encoding"),
    [
        (["deflate"], None),  # neither br nor gzip: sent as it is
        (["identity", "br"], None),  # only the first header counts, as starlette reads it
        (["br", "identity"], "br"),
        (["x-gzip"], "gzip"),  # a substring, as brotli_asgi matches it
    ],
)
def test_the_first_accept_encoding_header_decides(gateway, accepts, encoding):
    headers = [("authorization", AUTH["Authorization"])]
    headers += [("accept-encoding", accept) for accept in accepts]
    with httpx.Client(trust_env=False) as client:
        with client.stream("GET", f"{gateway.url}/graphql", params=LIST, headers=headers) as r:
            assert r.status_code == 200
            assert r.headers.get("content-encoding") == encoding
