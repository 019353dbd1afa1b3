"""bench/proxy.py, the floors: `--graphql` answers the gateway's own request with the upstream's data."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest

from gateway.settings import Settings
from tests.conftest import AUTH, Upstream, serve
from tests.support import ROOT


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    fresh = {"proxy", "queries"} - set(sys.modules)
    yield importlib.import_module("proxy")
    for name in fresh:  # bench's top-level modules stay out of the other tests' way
        sys.modules.pop(name, None)


@pytest.mark.parametrize("key", ["detail", "nested-list"])
def test_the_graphql_floor_reads_the_request_and_answers_the_envelope(
    proxy: ModuleType, upstream: Upstream, key: str
) -> None:
    from queries import case_by_key  # bench/queries.py, on the path the fixture set

    case = case_by_key(key)
    app = proxy.Proxy(Settings(upstream_url=upstream.url, upstream_client="aiohttp"), graphql=True)
    direct = httpx.get(upstream.url + case.direct_path, headers=AUTH).json()
    with serve(app) as url:
        body = json.dumps({"query": case.query}).encode()
        headers = {**AUTH, "Content-Type": "application/json"}
        answered = httpx.post(url + case.direct_path, content=body, headers=headers)
    assert answered.status_code == 200
    expected = (
        {"orderItem": direct} if case.items == 1 else {"orderItems": {"nodes": direct["results"]}}
    )
    assert answered.json() == {"data": expected}
    # One upstream call per request (the direct GET above is the other), and the query text
    # found a place in the proxy's plan table.
    assert upstream.calls() == 2
    assert list(app.plans) == [case.query]
