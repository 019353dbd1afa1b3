"""Fixtures: the fake OMS and the gateway, each a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings

from gateway.fake_upstream.app import DEMO_TOKEN, FakeOms, create_fake_app
from gateway.server.app import create_app
from gateway.server.protocol import make_server
from gateway.settings import UPSTREAM_CLIENTS, Settings
from gateway.upstream.resilience import Clock

AUTH = {"Authorization": f"Token {DEMO_TOKEN}"}

# The property tests replay the same examples on every run, so a red run is a change's doing and
# not a new draw; `pytest --hypothesis-profile explore` searches new ones.
hypothesis_settings.register_profile("replay", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("replay")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run `app` under uvicorn in a thread on loopback (a free port unless given); yield its URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    with run_server(uvicorn.Server(config)) as url:
        yield url


@contextlib.contextmanager
def serve_gateway(
    settings: Settings, port: int | None = None, clock: Clock | None = None
) -> Iterator[str]:
    """The gateway as `oms-gateway serve` runs it: its app on its guarded uvicorn protocol."""
    port = port or free_port()
    app = create_app(settings, clock=clock)
    server = make_server(app, settings, host="127.0.0.1", port=port, log_level="warning")
    with run_server(server) as url:
        yield url


@contextlib.contextmanager
def run_server(server: uvicorn.Server) -> Iterator[str]:
    """Run a uvicorn server in a thread; yield its URL once it listens."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{server.config.host}:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Upstream:
    url: str
    fake: FakeOms

    def calls(self, endpoint: str | None = None) -> int:
        stats = self.fake.stats()
        return stats["total"] if endpoint is None else stats["calls"].get(endpoint, 0)


@dataclass
class Gateway:
    url: str
    client: httpx.Client

    def post(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", AUTH)
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return self.client.post(f"{self.url}/graphql", json=body, headers=headers, **kw)

    def query(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        response = self.post(query, variables, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        body = self.query(query, variables, **kw)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    fake = FakeOms()
    with serve(create_fake_app(fake)) as url:
        yield Upstream(url, fake)


@pytest.fixture(autouse=True)
def _clean_upstream(request: pytest.FixtureRequest) -> Iterator[None]:
    if "upstream" not in request.fixturenames:
        yield
        return
    fake = request.getfixturevalue("upstream").fake
    fake.reset()
    yield
    fake.reset()


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    # Modern clients accept application/graphql-response+json, whose 4xx statuses the tests
    # pin down; application/json's (200 for well-formed requests) is tested where it is named.
    headers = {"Accept": "application/graphql-response+json"}
    with httpx.Client(timeout=30, trust_env=False, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def gateway(upstream: Upstream, http: httpx.Client) -> Iterator[Gateway]:
    with serve_gateway(Settings(upstream_url=upstream.url)) as url:
        yield Gateway(url, http)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module with `EACH_UPSTREAM_CLIENT = True` runs its `make_gateway` tests once per
    transport (gateway/upstream/transports), so httpx and aiohttp meet the same upstream behaviours."""
    module = metafunc.module
    if (
        getattr(module, "EACH_UPSTREAM_CLIENT", False)
        and "upstream_client" in metafunc.fixturenames
    ):
        metafunc.parametrize("upstream_client", UPSTREAM_CLIENTS)


@pytest.fixture
def upstream_client() -> str:
    """The transport `make_gateway` uses unless a test gives one (parametrized, see above)."""
    return Settings().upstream_client


@pytest.fixture
def make_gateway(
    upstream: Upstream, http: httpx.Client, upstream_client: str
) -> Iterator[Callable[..., Gateway]]:
    """A gateway with its own settings, e.g. `make_gateway(upstream_max_limit=20)`; with
    `clock=FakeClock()` (tests/support.py) its upstream runs on that clock."""
    with contextlib.ExitStack() as stack:

        def make(clock: Clock | None = None, **overrides: Any) -> Gateway:
            overrides.setdefault("upstream_url", upstream.url)
            overrides.setdefault("upstream_client", upstream_client)
            url = stack.enter_context(serve_gateway(Settings(**overrides), clock=clock))
            return Gateway(url, http)

        yield make
