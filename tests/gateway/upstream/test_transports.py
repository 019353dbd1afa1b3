"""The upstream transport setting, and what the app does through whichever transport it runs."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.settings import UPSTREAM_CLIENTS, Settings
from gateway.upstream.transports import open_transport
from gateway.upstream.transports.aiohttp_transport import AiohttpTransport
from gateway.upstream.transports.httpx_transport import HttpxTransport
from tests.conftest import free_port
from tests.support import metrics_text, sample

EACH_UPSTREAM_CLIENT = True

DETAIL_ENDPOINT = "/api/v1/oms/order_items/{id}/"


@pytest.mark.parametrize(
    ("environ", "kind"),
    [({}, HttpxTransport), ({"OMS_UPSTREAM_CLIENT": "aiohttp"}, AiohttpTransport)],
)
async def test_the_setting_picks_the_transport(environ, kind):
    settings = Settings.from_env(environ)
    async with open_transport(settings) as transport:
        assert type(transport) is kind


def test_an_unknown_client_is_refused_at_start():
    with pytest.raises(ValueError, match="upstream_client must be one of httpx, aiohttp"):
        Settings(upstream_client="curl")
    with pytest.raises(ValueError, match="upstream_max_body_bytes"):
        Settings(upstream_max_body_bytes=0)
    assert UPSTREAM_CLIENTS[0] == Settings().upstream_client == "httpx"


def test_readiness_probes_through_the_transport(make_gateway, http):
    gateway = make_gateway()
    ready = http.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["upstream_reachable"] is True
    down = make_gateway(upstream_url=f"http://127.0.0.1:{free_port()}")
    not_ready = http.get(f"{down.url}/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["upstream_reachable"] is False


def test_a_refused_body_is_counted_and_does_not_open_the_breaker(make_gateway, upstream):
    gateway = make_gateway(upstream_max_body_bytes=4096, breaker_min_calls=2)
    upstream.fake.faults = Faults(kind="endless", endpoints=frozenset({"detail"}))
    for item_id in (1, 2, 3):
        [error] = gateway.query(f"{{ orderItem(id: {item_id}) {{ id }} }}")["errors"]
        assert error["extensions"] == {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}
    text = metrics_text(gateway)
    assert sample(text, "oms_gateway_upstream_requests_total", status="body_refused") == 3
    # An answer came each time: the upstream is up, so the breaker stays closed.
    assert sample(text, "oms_gateway_circuit_breaker_state") == 0
    upstream.fake.faults = Faults()
    assert gateway.data("{ orderItem(id: 2) { id } }") == {"orderItem": {"id": "2"}}
