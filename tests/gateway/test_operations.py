"""Operating the gateway from outside: the CLI, start-up checks, logs of a real `serve`
process, CORS preflights, tracing's resource and the metrics with one and several workers."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cli import INTERNAL_SETTINGS, describe_default, flag
from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN, Faults
from gateway.settings import ENV_VARS, Settings
from tests.conftest import AUTH, free_port, serve
from tests.support import ROOT

CLI = Path(sys.executable).parent / "oms-gateway"
QUIET_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "OTEL_"))}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, timeout=60, env={**QUIET_ENV, **(env or {})}
    )


# --- the command line -------------------------------------------------------------------------


def test_version_comes_from_the_package_metadata():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = run_cli("--version")
    assert out.returncode == 0
    assert (
        out.stdout.strip() == f"oms-gateway {declared}" == f"oms-gateway {version('oms-gateway')}"
    )


def test_serve_help_names_every_setting_with_its_variable_and_default():
    out = run_cli("serve", "--help", env={"COLUMNS": "100"})
    assert out.returncode == 0
    # argparse wraps lines between words and after hyphens inside long values.
    text = re.sub(r"-\s+", "-", " ".join(out.stdout.split()))
    missing = []
    for f in dataclasses.fields(Settings):
        if f.name in INTERNAL_SETTINGS:
            continue
        wanted = f"env {ENV_VARS[f.name]}, default {describe_default(f.default)}"
        if flag(f.name) not in text or wanted not in text:
            missing.append(f"{flag(f.name)}: {wanted}")
    assert not missing, "serve --help lacks:\n" + "\n".join(missing)


def test_every_flag_reaches_its_setting():
    # A flag per setting, and each one lands on its own field (flags win over variables).
    from gateway.cli import _parser, _settings_from

    args = _parser().parse_args(
        ["serve", "--max-ids", "7", "--no-compile-operations", "--log-level", "warning",
         "--cors-allow-headers", "X-A,X-B", "--apq-ttl", "60"]
    )  # fmt: skip
    settings = _settings_from(args, {"OMS_MAX_IDS": "9", "OMS_APQ_TTL": "5"})
    assert settings.max_ids == 7 and settings.apq_ttl == 60
    assert settings.compile_operations is False and settings.log_level == "WARNING"
    assert settings.cors_allow_header_list == ["X-A", "X-B"]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--upstream-url", "not a url"], {}),
        ([], {"OMS_UPSTREAM_URL": "localhost:38001"}),
        (["--upstream-url", "ftp://oms.example"], {}),
        (["--upstream-url", "http://:8000"], {}),
        (["--upstream-url", "http://oms.example:port"], {}),
        ([], {"OMS_LOG_LEVEL": "chatty"}),
        ([], {"OMS_REDIS_URL": "localhost:6379"}),
    ],
)
def test_bad_settings_stop_serve_with_one_line_and_status_2(args, env):
    out = run_cli("serve", "--port", str(free_port()), *args, env=env)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oms-gateway: "), out.stderr
    assert any(name in lines[0] for name in ("upstream_url", "log_level", "redis_url"))
    assert out.stdout == ""


def test_a_port_in_use_is_one_line_and_status_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        for extra in ([], ["--workers", "2"]):
            out = run_cli("serve", "--port", port, *extra, env={"TMPDIR": str(tmp_path)})
            assert out.returncode == 1
            assert out.stderr.strip() == f"oms-gateway: cannot listen on 127.0.0.1:{port}: " \
                "Address already in use"  # fmt: skip
        for command in ("demo", "fake-upstream"):
            out = run_cli(command, "--port", port)
            assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
            assert out.stderr.strip().endswith("Address already in use")
    # A failed start leaves no metrics directory behind.
    assert list(tmp_path.iterdir()) == []


TRACING_WITHOUT_THE_EXTRA = """
import importlib.abc, sys

class HideOpenTelemetry(importlib.abc.MetaPathFinder):
    # As if the otel extra were not installed: every opentelemetry import fails.
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, HideOpenTelemetry())
from gateway.cli import main
sys.exit(main(["serve", "--port", sys.argv[1]], environ={"OMS_TRACING": "true"}))
"""


def test_tracing_without_the_extra_stops_serve_at_start_up():
    out = subprocess.run(
        [sys.executable, "-c", TRACING_WITHOUT_THE_EXTRA, str(free_port())],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=QUIET_ENV,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "otel extra" in lines[0] and "OMS_TRACING" in lines[0]
    assert out.stdout == ""  # it never got as far as starting


def test_tracing_resource_honours_the_otel_variables(monkeypatch):
    from gateway.observability.tracing import tracing_resource
    from gateway.observability.version import VERSION

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    plain = tracing_resource().attributes
    assert plain["service.name"] == "oms-gateway" and plain["service.version"] == VERSION
    monkeypatch.setenv("OTEL_SERVICE_NAME", "orders-graph")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=oms")
    named = tracing_resource().attributes
    assert named["service.name"] == "orders-graph"
    assert named["deployment.environment"] == "staging" and named["team"] == "oms"
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert tracing_resource().attributes["service.name"] == "from-attributes"


# --- a real `serve` process -------------------------------------------------------------------


@contextlib.contextmanager
def serve_process(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list]]:
    """`oms-gateway serve` as a subprocess; yields its URL and, after exit, its output lines."""
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**QUIET_ENV, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield url, output
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        output.extend(out.splitlines())
        assert proc.returncode == 0, out


def parse_text_line(line: str) -> dict[str, object]:
    """`time LEVEL logger message key=value ...` -> the fields (values JSON-decoded if quoted)."""
    fields: dict[str, object] = {}
    for token in shlex.split(line, posix=False):
        key, sep, value = token.partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    """A stand-in OTLP/HTTP collector on loopback that accepts and keeps span exports."""
    received: list[bytes] = []

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", 200, media_type="application/x-protobuf")

    with serve(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as url:
        yield url, received


def test_text_logs_of_a_real_serve_carry_every_field_and_each_upstream_failure(upstream, collector):
    collector_url, exported = collector
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    env = {
        "OMS_UPSTREAM_URL": upstream.url, "OMS_LOG_FORMAT": "text", "OMS_TRACING": "true",
        "OMS_UPSTREAM_BACKOFF_BASE": "0.001", "OMS_TOKEN": "service-secret-1",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector_url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100", "OMS_BREAKER_MIN_CALLS": "100",
    }  # fmt: skip
    with serve_process(env=env) as (url, output):
        ok = httpx.post(
            f"{url}/graphql", json={"query": "query Fine { orderItem(id: 1) { id } }"},
            headers={**AUTH, "X-Request-ID": "req-ok-1",
                     "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )  # fmt: skip
        assert ok.status_code == 200 and "errors" not in ok.json()
        upstream.fake.faults = Faults(kind="status", status=503, retry_after="0")
        failing = httpx.post(
            f"{url}/graphql",
            json={"query": "query Broken { orderItemsByIds(ids: [2, 3, 4]) { id } }"},
            headers={"X-Request-ID": "req-bad-1"},  # the service token is used
        )
        upstream.fake.faults = Faults()
        assert failing.json()["errors"][0]["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR
    text = "\n".join(output)
    assert "service-secret-1" not in text and DEMO_TOKEN not in text
    records = [parse_text_line(line) for line in output]
    access = [r for r in records if r.get("request_id") == "req-ok-1" and "outcome" in r]
    assert len(access) == 1
    line = access[0]
    assert line["operation"] == "Fine" and line["outcome"] == "ok" and line["status"] == 200
    assert line["upstream_calls"] == 1 and isinstance(line["duration_ms"], float)
    assert line["engine"] == "compiled" and line["fallback"] is None
    assert line["trace_id"] == trace_id and len(str(line["span_id"])) == 16
    # Three ids fail the same way: one WARNING for the operation, with everything but secrets.
    failures = [line for line in output if "WARNING gateway.upstream upstream call" in line]
    assert len(failures) == 1, failures
    failure = parse_text_line(failures[0])
    assert failure == failure | {
        "request_id": "req-bad-1", "endpoint": "/api/v1/oms/order_items/{id}/", "cause": 503,
        "attempts": 3, "code": ErrorCode.UPSTREAM_ERROR,
    }  # fmt: skip
    listening = [line for line in output if "listening on" in line]
    assert listening and url in listening[0]
    assert exported, "no spans reached the OTLP endpoint"


def test_json_logs_explain_an_unreachable_upstream_and_failed_readiness(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    env = {"OMS_UPSTREAM_URL": dead, "OMS_LOG_LEVEL": "warning", "OMS_UPSTREAM_RETRIES": "1",
           "OMS_UPSTREAM_BACKOFF_BASE": "0.001"}  # fmt: skip
    with serve_process(env=env) as (url, output):
        response = httpx.post(
            f"{url}/graphql", json={"query": "{ orderItem(id: 1) { id } }"},
            headers={**AUTH, "X-Request-ID": "req-dead-1"},
        )  # fmt: skip
        assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.UPSTREAM_UNAVAILABLE
        assert httpx.get(f"{url}/readyz").status_code == 503
    records = [json.loads(line) for line in output if line.startswith("{")]
    assert records and all(r["level"] in ("warning", "error") for r in records)  # OMS_LOG_LEVEL
    upstream_lines = [r for r in records if r["logger"] == "gateway.upstream"]
    assert len(upstream_lines) == 1
    assert upstream_lines[0] | {"time": None} == upstream_lines[0] | {
        "time": None, "level": "warning", "request_id": "req-dead-1",
        "endpoint": "/api/v1/oms/order_items/{id}/", "cause": "ConnectionFailed", "attempts": 2,
        "code": ErrorCode.UPSTREAM_UNAVAILABLE,
    }  # fmt: skip
    readiness = [r for r in records if r["logger"] == "gateway.readiness"]
    assert readiness and readiness[0]["cause"] == "ConnectionFailed"
    assert dead not in "\n".join(output)


# --- CORS ---------------------------------------------------------------------------------------


def test_a_preflight_with_apollo_and_tracing_headers_is_allowed(make_gateway, http):
    gateway = make_gateway(cors_origins="https://app.example")
    wanted = ("authorization, content-type, apollographql-client-name, "
              "apollographql-client-version, traceparent, tracestate, x-request-id")  # fmt: skip
    preflight = http.options(
        f"{gateway.url}/graphql",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": wanted},
    )  # fmt: skip
    assert preflight.status_code == 200
    allowed = {
        h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
    }
    assert {h.strip() for h in wanted.split(",")} <= allowed
    assert preflight.headers["access-control-max-age"] == "600"
    refused = http.options(
        f"{gateway.url}/graphql",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-not-allowed"},
    )  # fmt: skip
    assert refused.status_code == 400


def test_cors_headers_and_max_age_are_settings(make_gateway, http):
    gateway = make_gateway(cors_origins="https://app.example", cors_allow_headers="X-Custom",
                           cors_max_age=30)  # fmt: skip
    preflight = http.options(
        f"{gateway.url}/graphql",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-custom"},
    )  # fmt: skip
    assert preflight.status_code == 200 and preflight.headers["access-control-max-age"] == "30"


# --- metrics with one worker and with several ---------------------------------------------------

REQUIRED_FAMILIES = {
    "process_cpu_seconds": "counter", "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge", "process_start_time_seconds": "gauge",
    "process_open_fds": "gauge", "process_max_fds": "gauge", "python_info": "gauge",
    "python_gc_collections": "counter", "python_gc_objects_collected": "counter",
    "oms_gateway_build_info": "gauge", "oms_gateway_errors": "counter",
    "oms_gateway_phase_duration_seconds": "histogram", "oms_gateway_operations": "counter",
}  # fmt: skip


def scrape_after_traffic(workers: int, upstream_url: str, tmp_path: Path) -> list[dict]:
    """Families (name -> type and samples) of several scrapes of a `serve --workers N`."""
    env = {"OMS_UPSTREAM_URL": upstream_url, "OMS_WORKERS": str(workers), "TMPDIR": str(tmp_path)}
    scrapes = []
    with serve_process(env=env) as (url, output), httpx.Client(timeout=30) as client:
        for i in range(6):  # distinct documents, so each is parsed and validated once
            body = {"query": f"query Op{i} {{ orderItem(id: {i + 1}) {{ id }} }}"}
            assert client.post(f"{url}/graphql", json=body, headers=AUTH).status_code == 200
        client.post(f"{url}/graphql", json={"query": "{ orderItem(id: 1) { nope } }"})
        for _ in range(4):  # with several workers, each scrape may reach a different one
            text = client.get(f"{url}/metrics").text
            scrapes.append(
                {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}
            )
    assert any(f"with {workers} worker(s)" in line for line in output), output
    return scrapes


def total(families: dict, name: str, suffix: str = "_total", **labels: str) -> float:
    return sum(
        s.value for s in families[name][1]
        if s.name == name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    )  # fmt: skip


def test_the_same_families_with_one_worker_and_with_two(upstream, tmp_path):
    from gateway.observability.version import PYTHON, VERSION

    shapes = {}
    for workers in (1, 2):
        scrapes = scrape_after_traffic(workers, upstream.url, tmp_path)
        for families in scrapes:
            kinds = {name: kind for name, (kind, _) in families.items()}
            missing = {n: t for n, t in REQUIRED_FAMILIES.items() if kinds.get(n) != t}
            assert not missing, f"{workers} worker(s): missing or mistyped {missing}"
            samples = [s for _, (_, ss) in families.items() for s in ss]
            assert not [s.name for s in samples if s.name.endswith("_created")]
            # Summed across workers: every scrape sees all 7 operations and the one error.
            assert total(families, "oms_gateway_operations") == 7
            assert (
                total(families, "oms_gateway_errors", code=ErrorCode.GRAPHQL_VALIDATION_FAILED) == 1
            )
            phases = {
                s.labels["phase"]: s.value for s in families["oms_gateway_phase_duration_seconds"][1]
                if s.name.endswith("_count")
            }  # fmt: skip
            assert phases["parse"] == phases["validate"] == 7 and phases["execute"] == 6
            assert phases["upstream_wait"] == 6
            build = families["oms_gateway_build_info"][1]
            assert [(s.labels, s.value) for s in build] == [
                ({"version": VERSION, "python": PYTHON}, 1.0)
            ]
            assert total(families, "process_cpu_seconds") > 0
            assert total(families, "process_resident_memory_bytes", "") > 10_000_000
        # A labelled family with no sample yet is a bare HELP line with one process and absent
        # with several: only families with samples count.
        shapes[workers] = {name: kind for name, (kind, ss) in scrapes[0].items() if ss}
    assert shapes[1] == shapes[2]
    # The workers' metrics directory was the gateway's own: removed on exit.
    assert list(tmp_path.iterdir()) == []


def test_a_given_metrics_directory_is_emptied_at_start_and_kept(upstream, tmp_path):
    # A pod's emptyDir outlives a container restart: the old workers' files must not count.
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_4194000.db").write_bytes(b"left by a worker that is gone")
    env = {"OMS_UPSTREAM_URL": upstream.url, "OMS_WORKERS": "2",
           "PROMETHEUS_MULTIPROC_DIR": str(directory)}  # fmt: skip
    with serve_process(env=env) as (url, _):
        assert not (directory / "counter_4194000.db").exists()
        families = {
            f.name for f in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
        }
        assert "oms_gateway_build_info" in families
    assert directory.is_dir()  # the operator's directory, not ours to remove


@pytest.mark.parametrize("kind", ["malformed", "misshaped"])
def test_a_bad_upstream_body_is_logged_once_with_its_cause(make_gateway, upstream, caplog, kind):
    import logging

    gateway = make_gateway()
    caplog.set_level(logging.WARNING, logger="gateway.upstream")
    upstream.fake.faults = Faults(kind=kind)
    body = gateway.query(
        "{ a: orderItems(first: 2) { nodes { id } } }",
        headers={**AUTH, "X-Request-ID": f"req-{kind}"},
    )
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.UPSTREAM_BAD_RESPONSE
    lines = [r for r in caplog.records if getattr(r, "request_id", None) == f"req-{kind}"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.levelname, line.cause, line.attempts, line.code) == (
        "WARNING",
        "bad_response",
        1,
        ErrorCode.UPSTREAM_BAD_RESPONSE,
    )
    assert line.endpoint == "/api/v1/oms/order_items/list-simple/"
    assert DEMO_TOKEN not in caplog.text
