"""The optional in-process response cache: off by default, per token, GET and APQ only."""

from __future__ import annotations

from gateway.errors import ErrorCode
from tests.conftest import AUTH
from tests.support import FakeClock

PARAMS = {"query": "{ orderItem(id: 5) { id price } }"}


def test_off_by_default(gateway, upstream, http):
    for _ in range(2):
        http.get(f"{gateway.url}/graphql", params=PARAMS, headers=AUTH)
    assert upstream.calls() == 2


def test_get_answers_are_reused_per_token_until_they_expire(make_gateway, upstream, http):
    clock = FakeClock()
    gateway = make_gateway(clock=clock, response_cache_ttl=0.5)
    first = http.get(f"{gateway.url}/graphql", params=PARAMS, headers=AUTH)
    second = http.get(f"{gateway.url}/graphql", params=PARAMS, headers=AUTH)
    assert first.json() == second.json() and upstream.calls() == 1
    assert first.headers["etag"] == second.headers["etag"]
    stranger = http.get(
        f"{gateway.url}/graphql", params=PARAMS, headers={"Authorization": "Token x"}
    )
    assert stranger.json()["data"] == {"orderItem": None} and upstream.calls() == 2
    clock.advance(0.4)
    http.get(f"{gateway.url}/graphql", params=PARAMS, headers=AUTH)
    assert upstream.calls() == 2  # still fresh
    clock.advance(0.2)
    http.get(f"{gateway.url}/graphql", params=PARAMS, headers=AUTH)
    assert upstream.calls() == 3


def test_answers_with_errors_are_not_cached(make_gateway, upstream, http):
    gateway = make_gateway(response_cache_ttl=30)
    params = {"query": '{ orderItem(id: 6) { id } x: orderItem(id: "bad") { id } }'}
    for _ in range(2):
        body = http.get(f"{gateway.url}/graphql", params=params, headers=AUTH).json()
        assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert upstream.calls() == 2
