"""Scale-out: two gateway processes share APQ documents and the response cache in a real Redis."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN
from tests.conftest import AUTH, free_port

QUERY = "query Cached { orderItem(id: 7) { id price } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()
APQ = {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited early"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not start")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: .ci/run installs Debian's redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _gateway_process(upstream_url: str, redis_url: str) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "OMS_RESPONSE_CACHE_TTL": "30", "OMS_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [Path(sys.executable).parent / "oms-gateway", "serve", "--upstream-url", upstream_url,
         "--port", str(port), "--redis-url", redis_url],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/healthz", proc, "gateway")
    return url, proc


@pytest.fixture(scope="module")
def two_gateways(upstream, redis_url) -> Iterator[tuple[str, str]]:
    first, p1 = _gateway_process(upstream.url, redis_url)
    second, p2 = _gateway_process(upstream.url, redis_url)
    try:
        yield first, second
    finally:
        for proc in (p1, p2):
            proc.terminate()
            proc.wait(timeout=10)


def test_a_hash_registered_on_one_gateway_is_served_by_the_other(two_gateways, upstream):
    first, second = two_gateways
    missing = httpx.post(f"{second}/graphql", json={"extensions": APQ}, headers=AUTH).json()
    assert missing["errors"][0]["extensions"]["code"] == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    registered = httpx.post(
        f"{first}/graphql", json={"query": QUERY, "extensions": APQ}, headers=AUTH
    )
    assert registered.json()["data"]["orderItem"]["id"] == "7"
    served = httpx.post(f"{second}/graphql", json={"extensions": APQ}, headers=AUTH)
    assert served.json() == registered.json()


def test_cached_responses_are_shared_but_never_across_tokens(two_gateways, upstream):
    first, second = two_gateways
    params = {"query": QUERY.replace("7", "8")}
    upstream.fake.reset()
    warm = httpx.get(f"{first}/graphql", params=params, headers=AUTH)
    assert warm.json()["data"]["orderItem"]["id"] == "8"
    assert upstream.calls() == 1
    again = httpx.get(f"{second}/graphql", params=params, headers=AUTH)
    assert again.json() == warm.json()
    assert upstream.calls() == 1  # the second gateway answered from Redis
    other = httpx.get(
        f"{second}/graphql", params=params, headers={"Authorization": "Token other-client"}
    )
    body = other.json()
    assert body["data"] == {"orderItem": None}
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.UNAUTHENTICATED
    assert upstream.calls() == 2  # the other token went upstream and was refused there
    assert DEMO_TOKEN not in other.text


def test_posts_without_apq_are_never_cached(two_gateways, upstream):
    first, _ = two_gateways
    upstream.fake.reset()
    for _ in range(2):
        httpx.post(f"{first}/graphql", json={"query": "{ orderItem(id: 9) { id } }"}, headers=AUTH)
    assert upstream.calls() == 2


def test_redis_outage_degrades_to_misses(upstream, make_gateway):
    gateway = make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0", response_cache_ttl=30)
    missing = gateway.client.post(f"{gateway.url}/graphql", json={"extensions": APQ}, headers=AUTH)
    assert missing.status_code == 200
    assert missing.json()["errors"][0]["extensions"]["code"] == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    ok = gateway.client.post(
        f"{gateway.url}/graphql", json={"query": QUERY, "extensions": APQ}, headers=AUTH
    )
    assert ok.json()["data"]["orderItem"]["id"] == "7"
