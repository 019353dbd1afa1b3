"""What the gateway exposes: allowed hosts, empty credentials, GraphiQL assets, /metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN
from gateway.settings import Settings
from tests.conftest import AUTH, free_port

DETAIL = "{ orderItem(id: 1) { id } }"
ASSET = "/graphiql/vendor/MANIFEST.json"


def test_a_foreign_host_is_refused_before_the_service_token_is_used(make_gateway, upstream):
    # DNS rebinding: a page on attacker.example whose name now resolves to the gateway.
    gateway = make_gateway(token=DEMO_TOKEN)
    response = gateway.post(DETAIL, headers={"Host": "attacker.example"})
    assert response.status_code == 400
    assert upstream.calls() == 0
    port = gateway.url.rsplit(":", 1)[1]
    assert gateway.post(DETAIL, headers={"Host": f"localhost:{port}"}).status_code == 200
    assert upstream.calls() == 1


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1", 200),
        ("localhost:{port}", 200),
        ("LocalHost:{port}", 200),  # names are matched without regard to case
        ("localhost:", 400),
        ("localhost:{port}:1", 400),
        ("localhost:8a", 400),
        ("localhost.attacker.example", 400),
        ("attacker.example:{port}", 400),
        ("[::1]:{port}", 400),
    ],
)
def test_the_host_is_checked_as_starlette_checks_it(gateway, host, status):
    port = gateway.url.rsplit(":", 1)[1]
    response = gateway.post(DETAIL, headers={**AUTH, "Host": host.format(port=port)})
    assert response.status_code == status


def test_allowed_hosts_can_name_the_public_name_or_allow_any(make_gateway, upstream):
    named = make_gateway(allowed_hosts="api.example.com")
    assert named.post(DETAIL, headers={**AUTH, "Host": "api.example.com"}).status_code == 200
    assert named.post(DETAIL).status_code == 400  # 127.0.0.1 is no longer among them
    anyone = make_gateway(allowed_hosts="*")
    assert anyone.post(DETAIL, headers={**AUTH, "Host": "whatever.example"}).status_code == 200


def test_an_empty_authorization_is_a_bad_credential_not_a_cue_for_the_token(make_gateway, upstream):
    gateway = make_gateway(token=DEMO_TOKEN)
    body = gateway.query(DETAIL, headers={"Authorization": ""})
    assert body["data"] == {"orderItem": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == ErrorCode.UNAUTHENTICATED
    assert "empty" in error["message"]
    assert upstream.calls() == 0
    # No header at all still means the service token.
    assert gateway.data(DETAIL, headers={}) == {"orderItem": {"id": "1"}}


def test_production_serves_no_graphiql_assets(make_gateway, http):
    development = make_gateway()
    assert http.get(f"{development.url}{ASSET}").status_code == 200
    production = make_gateway(env="production")
    for path in (ASSET, "/graphiql/init.js", "/graphiql/vendor/graphiql/graphiql.min.js"):
        assert http.get(f"{production.url}{path}").status_code == 404


def test_metrics_can_be_turned_off(make_gateway, http):
    gateway = make_gateway(metrics_enabled=False)
    assert gateway.data(DETAIL) == {"orderItem": {"id": "1"}}
    assert http.get(f"{gateway.url}/metrics").status_code == 404


def test_metrics_port_needs_a_single_worker():
    with pytest.raises(ValueError, match="metrics_port"):
        Settings(metrics_port=9100, workers=2)
    for hosts in (" , ", "api.*.com", "*example.com"):
        with pytest.raises(ValueError, match="allowed_hosts"):
            Settings(allowed_hosts=hosts)
    assert Settings(allowed_hosts="*.example.com,api.example.com").allowed_host_list == [
        "*.example.com",
        "api.example.com",
    ]


@contextlib.contextmanager
def cli_serve(upstream, **env: str) -> Iterator[str]:
    """`oms-gateway serve` as a process, with `OMS_*` settings; yields its URL once it answers."""
    port = free_port()
    environ = {**os.environ, "OMS_UPSTREAM_URL": upstream.url, "OMS_PORT": str(port), **env}
    command = [sys.executable, "-m", "gateway.cli", "serve"]
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=5, trust_env=False).status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert process.returncode in (0, -signal.SIGTERM), process.stderr.read().decode()


def test_serve_puts_metrics_on_their_own_port(upstream):
    metrics_port = free_port()
    with (
        cli_serve(upstream, OMS_METRICS_PORT=str(metrics_port), OMS_LOG_FORMAT="text") as api,
        httpx.Client(timeout=5, trust_env=False) as client,
    ):
        reply = client.post(f"{api}/graphql", json={"query": DETAIL}, headers=AUTH)
        assert reply.json() == {"data": {"orderItem": {"id": "1"}}}
        assert client.get(f"{api}/metrics").status_code == 404
        metrics = client.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        line = 'oms_gateway_operations_total{engine="compiled",operation="anonymous",outcome="ok"}'
        assert f"{line} 1.0" in metrics


def test_serve_with_workers_runs_the_guarded_protocol_in_each(upstream):
    with cli_serve(upstream, OMS_WORKERS="2", OMS_HEADER_TIMEOUT="0.3") as api:
        reply = httpx.post(f"{api}/graphql", json={"query": DETAIL}, headers=AUTH, timeout=10)
        assert reply.json() == {"data": {"orderItem": {"id": "1"}}}
        for _ in range(4):  # the kernel spreads these over both workers
            with socket.create_connection(("127.0.0.1", int(api.rsplit(":", 1)[1])), 10) as sock:
                started = time.monotonic()
                assert sock.recv(1024).startswith(b"HTTP/1.1 408")  # sent nothing: cut
                assert time.monotonic() - started < 10
