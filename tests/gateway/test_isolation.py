"""Isolation between clients: data only for a valid token, and tokens never echoed or logged."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN, Faults
from gateway.observability.logs import JsonFormatter
from tests.conftest import AUTH

# Run the tests that use `make_gateway` once per upstream transport (tests/conftest.py).
EACH_UPSTREAM_CLIENT = True

QUERIES = [
    ("{ orderItem(id: 1) { id price } }", {"orderItem": {"id": "1", "price": "599.99"}}),
    ("{ orderItemsByIds(ids: [2, 3]) { id } }", {"orderItemsByIds": [{"id": "2"}, {"id": "3"}]}),
    (
        "{ orderItems(first: 2) { nodes { id } } }",
        {"orderItems": {"nodes": [{"id": "1"}, {"id": "2"}]}},
    ),
    ("{ orderItems(first: 1) { nodes { id state { name } } } }", None),
]
THREADS, REQUESTS = 8, 25


def secret(n: int) -> str:
    return f"intruder-{n}-Zq9x"


def no_data(body) -> bool:
    data = body.get("data")
    if data is None:
        return True
    return all(v is None or v == [None] * len(v) for v in data.values())


@pytest.fixture
def capture_all_logs(caplog):
    caplog.set_level(logging.DEBUG)  # every logger, the gateway's own and httpx's included
    return caplog


def rendered(records) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in records)


def test_concurrent_clients_see_only_what_their_token_allows(
    make_gateway, upstream, capture_all_logs
):
    gateway = make_gateway()

    def client(n: int):
        valid = n % 2 == 0
        token = DEMO_TOKEN if valid else secret(n)
        headers = {"Authorization": f"Token {token}"}
        seen = []
        with httpx.Client(timeout=10, trust_env=False) as http:
            for i in range(REQUESTS):
                query, expected = QUERIES[(n + i) % len(QUERIES)]
                response = http.post(
                    f"{gateway.url}/graphql", json={"query": query}, headers=headers
                )
                seen.append((valid, token, expected, response))
        return seen

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for chunk in pool.map(client, range(THREADS)) for r in chunk]
    assert time.perf_counter() - started < 30
    assert len(results) == THREADS * REQUESTS

    served = refused = 0
    for valid, token, expected, response in results:
        assert response.status_code == 200
        assert token not in response.text
        assert all(token not in value for value in response.headers.values())
        body = response.json()
        if valid:
            assert "errors" not in body, body
            if expected is not None:
                assert body["data"] == expected
            served += 1
        else:
            assert no_data(body), body
            assert {e["extensions"]["code"] for e in body["errors"]} == {ErrorCode.UNAUTHENTICATED}
            refused += 1
    assert served == refused == THREADS * REQUESTS // 2

    logs = rendered(capture_all_logs.records)
    assert "gateway.access" in logs  # the capture did see the gateway's own log lines
    for n in range(1, THREADS, 2):
        assert secret(n) not in logs
    assert DEMO_TOKEN not in logs


def test_tokens_stay_out_of_every_error_path_and_its_logs(make_gateway, upstream, capture_all_logs):
    service = "service-secret-Lw4u"
    gateway = make_gateway(token=service, upstream_retries=1)
    header = {"Authorization": f"Token {secret(99)}"}
    faults = [
        Faults(),
        Faults(kind="status", status=500),
        Faults(kind="status", status=503, retry_after="0"),
        Faults(kind="malformed"),
        Faults(kind="content_type"),
    ]
    for fault in faults:
        upstream.fake.faults = fault
        for headers in (header, {}, {"Authorization": "Bearer abc.def.ghi"}):
            response = gateway.post("{ orderItem(id: 1) { id } }", headers=headers)
            assert response.status_code == 200
            assert "errors" in response.json()
            for leak in (secret(99), service, "abc.def.ghi"):
                assert leak not in response.text
                assert all(leak not in v for v in response.headers.values())
    logs = rendered(capture_all_logs.records)
    assert "gateway.access" in logs
    for leak in (secret(99), service, "abc.def.ghi"):
        assert leak not in logs


def test_the_service_token_is_used_upstream_but_never_shown(make_gateway, http):
    gateway = make_gateway(token=DEMO_TOKEN)
    response = gateway.post("{ orderItem(id: 1) { id } }", headers={})
    assert response.json() == {"data": {"orderItem": {"id": "1"}}}
    assert DEMO_TOKEN not in response.text
    metrics = http.get(f"{gateway.url}/metrics")
    assert DEMO_TOKEN not in metrics.text
    ready = http.get(f"{gateway.url}/readyz")
    assert DEMO_TOKEN not in ready.text


def test_the_response_cache_is_never_shared_across_tokens(make_gateway, upstream):
    gateway = make_gateway(response_cache_ttl=30)
    params = {"query": "{ orderItem(id: 4) { id price } }"}
    url = f"{gateway.url}/graphql"
    first = gateway.client.get(url, params=params, headers=AUTH)
    assert "errors" not in first.json()
    assert gateway.client.get(url, params=params, headers=AUTH).json() == first.json()
    assert upstream.calls() == 1  # the second answer came from the cache

    intruder = {"Authorization": f"Token {secret(7)}"}
    for headers in (intruder, {"Authorization": f"Token {DEMO_TOKEN}x"}, {}):
        response = gateway.client.get(url, params=params, headers=headers)
        body = response.json()
        assert no_data(body), (headers, body)
        assert body["errors"][0]["extensions"]["code"] == ErrorCode.UNAUTHENTICATED


def test_a_failed_answer_is_not_cached_for_the_next_client(make_gateway, upstream):
    gateway = make_gateway(response_cache_ttl=30, upstream_retries=0)
    params = {"query": "{ orderItem(id: 5) { id } }"}
    url = f"{gateway.url}/graphql"
    upstream.fake.faults = Faults(kind="status", status=500)
    assert "errors" in gateway.client.get(url, params=params, headers=AUTH).json()
    upstream.fake.faults = Faults()
    assert gateway.client.get(url, params=params, headers=AUTH).json() == {
        "data": {"orderItem": {"id": "5"}}
    }


def test_upstream_cookies_never_reach_another_request(make_gateway, upstream):
    # A session backend or a sticky load balancer in front of the OMS may set cookies. The
    # upstream client is shared by every client of the gateway, so a kept cookie would ride
    # along on the next client's call and could authenticate it as someone else.
    gateway = make_gateway()
    upstream.fake.set_cookies = True
    for item_id in (1, 2, 3):
        gateway.data(f"{{ orderItem(id: {item_id}) {{ id }} }}")
    gateway.data("{ orderItems(first: 2) { nodes { id } } }")
    forwarded = upstream.fake.forwarded
    assert len(forwarded) == 4
    assert [f for f in forwarded if "cookie" in f] == []
