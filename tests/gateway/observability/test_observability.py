"""Metrics, the access log, request ids, readiness and tracing, observed from outside."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN, Faults
from gateway.observability.logs import JsonFormatter
from gateway.server.app import create_app
from gateway.settings import Settings
from tests.conftest import AUTH, free_port, serve
from tests.support import metrics_text, sample

METRIC_NAMES = [
    "oms_gateway_operations_total",
    "oms_gateway_operation_duration_seconds_bucket",
    "oms_gateway_operations_in_flight",
    "oms_gateway_upstream_requests_total",
    "oms_gateway_upstream_duration_seconds_bucket",
    "oms_gateway_upstream_retries_total",
    "oms_gateway_circuit_breaker_state",
    "oms_gateway_cache_requests_total",
    "oms_gateway_shed_requests_total",
    "oms_gateway_compiled_fallbacks_total",
]


def test_metrics_count_operations_upstream_calls_and_retries(make_gateway, upstream):
    gateway = make_gateway()
    gateway.data("query Slim { orderItems(first: 3) { nodes { id } } }")
    gateway.data("query Slim { orderItems(first: 3) { nodes { id } } }")
    upstream.fake.faults = Faults(kind="status", status=503, retry_after="0", rate=1.0)
    gateway.query("query One { orderItem(id: 2) { id } }")
    text = metrics_text(gateway)
    for name in METRIC_NAMES:
        assert name in text, name
    assert sample(text, "oms_gateway_operations_total", operation="Slim", engine="compiled") == 2
    # data is {"orderItem": null} with an error: a partial answer
    assert sample(text, "oms_gateway_operations_total", operation="One", outcome="partial") == 1
    endpoint = "/api/v1/oms/order_items/{id}/"
    assert sample(text, "oms_gateway_upstream_requests_total", endpoint=endpoint, status="503") == 3
    assert sample(text, "oms_gateway_upstream_retries_total", endpoint=endpoint) == 2
    assert sample(text, "oms_gateway_circuit_breaker_state") == 0


def test_operations_in_flight_are_counted_while_they_run(make_gateway, upstream):
    gateway = make_gateway()
    assert sample(metrics_text(gateway), "oms_gateway_operations_in_flight") == 0
    upstream.fake.faults = Faults(latency=0.5)
    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(gateway.data, "{ orderItem(id: 2) { id } }") for _ in range(2)]
        deadline = time.monotonic() + 5
        while upstream.fake.in_flight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sample(metrics_text(gateway), "oms_gateway_operations_in_flight") == 2
        for operation in running:
            assert operation.result()["orderItem"] == {"id": "2"}
    upstream.fake.faults = Faults()
    assert sample(metrics_text(gateway), "oms_gateway_operations_in_flight") == 0
    gateway.query("{ __typename }")  # one that fails nothing, and one that is refused
    assert gateway.post("{ nope }").status_code == 400
    assert sample(metrics_text(gateway), "oms_gateway_operations_in_flight") == 0


def test_metric_labels_stay_bounded_and_carry_no_secrets(make_gateway):
    gateway = make_gateway()
    for i in range(205):
        gateway.query(f"query Op{i} {{ __typename }}")
    gateway.query(
        "query Secret { orderItem(id: 1) { id } }", headers={"Authorization": "Token tkn-zz9"}
    )
    text = metrics_text(gateway)
    names = {
        line.split('operation="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("oms_gateway_operations_total{")
    }
    assert "other" in names and len(names) <= 201
    assert "tkn-zz9" not in text and "orderItem(id" not in text


def test_apq_hits_and_misses_are_counted(make_gateway):
    import hashlib

    gateway = make_gateway()
    query = "{ orderItem(id: 1) { id } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    ext = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    gateway.client.post(
        f"{gateway.url}/graphql", json={"query": query, "extensions": ext}, headers=AUTH
    )
    gateway.client.post(f"{gateway.url}/graphql", json={"extensions": ext}, headers=AUTH)
    text = metrics_text(gateway)
    assert sample(text, "oms_gateway_cache_requests_total", cache="apq", result="hit") == 1
    assert sample(text, "oms_gateway_cache_requests_total", cache="apq", result="miss") == 1


def test_access_log_line_per_operation_without_tokens(make_gateway, caplog):
    gateway = make_gateway()
    caplog.set_level(logging.INFO)
    response = gateway.post(
        "query Named { orderItems(first: 2) { nodes { id } } }",
        headers={**AUTH, "X-Request-ID": "req-123"},
    )
    gateway.post("{ orderItem(id: 1) { id } }", headers={"Authorization": "Token leaky-77"})
    assert response.headers["x-request-id"] == "req-123"
    lines = [r for r in caplog.records if r.name == "gateway.access"]
    named = next(r for r in lines if r.request_id == "req-123")
    assert named.operation == "Named" and named.outcome == "ok" and named.upstream_calls == 1
    assert named.duration_ms > 0 and named.status == 200
    assert any(r.codes == [ErrorCode.UNAUTHENTICATED] for r in lines)
    formatter = JsonFormatter()
    rendered = "\n".join(formatter.format(r) for r in caplog.records)
    assert DEMO_TOKEN not in rendered and "leaky-77" not in rendered
    assert json.loads(formatter.format(named))["request_id"] == "req-123"


def test_a_bail_is_told_and_costs_no_upstream_call(make_gateway, upstream, caplog):
    # A bad id leaves an error in a list slot: the projector bails and graphql-core reruns the
    # operation from the loaders of the compiled run.
    gateway = make_gateway()
    caplog.set_level(logging.INFO)
    upstream.fake.reset()
    body = gateway.post('{ orderItemsByIds(ids: [3, "x"]) { id } }').json()
    assert body["data"] == {"orderItemsByIds": [{"id": "3"}, None]}
    assert upstream.fake.stats()["calls"] == {"detail": 1}
    [line] = [r for r in caplog.records if r.name == "gateway.access"]
    assert (line.engine, line.fallback, line.upstream_calls) == ("graphql-core", "bailed", 1)
    text = metrics_text(gateway)
    assert sample(text, "oms_gateway_compiled_fallbacks_total", reason="bailed") == 1
    labels = {"engine": "graphql-core", "outcome": "partial"}
    assert sample(text, "oms_gateway_operations_total", **labels) == 1


def test_request_id_is_generated_returned_and_forwarded(gateway, upstream):
    response = gateway.post("{ orderItem(id: 3) { id } }")
    generated = response.headers["x-request-id"]
    assert len(generated) >= 16
    assert upstream.fake.forwarded[-1]["x-request-id"] == generated
    bad = gateway.post(
        "{ orderItem(id: 4) { id } }", headers={**AUTH, "X-Request-ID": "bad id\twith tab"}
    )
    assert bad.headers["x-request-id"] != "bad id\twith tab"


def test_health_and_readiness(make_gateway, http):
    gateway = make_gateway()
    assert http.get(f"{gateway.url}/healthz").status_code == 200
    ready = http.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    down = make_gateway(upstream_url=f"http://127.0.0.1:{free_port()}")
    not_ready = http.get(f"{down.url}/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["upstream_reachable"] is False


def test_readiness_reports_an_open_breaker_without_draining(make_gateway, upstream, http):
    # Every instance shares the upstream: an open breaker drained everywhere serves nobody.
    gateway = make_gateway(breaker_min_calls=2, breaker_cooldown=30, upstream_retries=0)
    upstream.fake.faults = Faults(kind="status", status=500)
    for i in range(3):
        gateway.query(f"{{ orderItem(id: {i + 1}) {{ id }} }}")
    body = http.get(f"{gateway.url}/readyz").json()
    assert body["circuit_breaker"] == "open" and body["ready"] is True
    assert sample(metrics_text(gateway), "oms_gateway_circuit_breaker_state") == 2


def test_spans_per_operation_and_upstream_call_with_traceparent(upstream, http):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(Settings(upstream_url=upstream.url, tracing=True), tracer_provider=provider)
    with serve(app) as url:
        response = http.post(
            f"{url}/graphql",
            json={
                "query": "query T { orderItem(id: 1) { id } orderItems(first: 2) { nodes { id } } }"
            },
            headers=AUTH,
        )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    operation = next(s for s in spans if s.name == "graphql.operation")
    calls = [s for s in spans if s.name == "oms.request"]
    assert len(calls) == 2
    assert all(
        s.parent is not None and s.parent.span_id == operation.context.span_id for s in calls
    )
    assert operation.attributes["graphql.operation.name"] == "T"
    trace_id = f"{operation.context.trace_id:032x}"
    parents = [f.get("traceparent", "") for f in upstream.fake.forwarded]
    assert len(parents) == 2 and all(trace_id in p for p in parents)


def test_incoming_traceparent_continues_the_trace(upstream, http):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(Settings(upstream_url=upstream.url, tracing=True), tracer_provider=provider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with serve(app) as url:
        http.post(
            f"{url}/graphql",
            json={"query": "{ orderItem(id: 1) { id } }"},
            headers={**AUTH, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
    operation = next(s for s in exporter.get_finished_spans() if s.name == "graphql.operation")
    assert f"{operation.context.trace_id:032x}" == trace_id


def test_gateway_runs_unchanged_without_the_otel_extra(upstream):
    script = f"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor
sys.modules["opentelemetry"] = None  # as if the extra were not installed
import httpx
from tests.conftest import serve, AUTH
from gateway.server.app import create_app
from gateway.settings import Settings
with serve(create_app(Settings(upstream_url={upstream.url!r}, tracing=True))) as url:
    r = httpx.post(url + "/graphql", json={{"query": "{{ orderItem(id: 1) {{ price }} }}"}}, headers=AUTH)
    print(r.json()["data"]["orderItem"]["price"])
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "599.99"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_formats(fmt, capsys):
    from gateway.observability.logs import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(fmt)
        logging.getLogger("gateway.access").info("operation", extra={"request_id": "r-1"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    if fmt == "json":
        assert json.loads(out)["request_id"] == "r-1"
    else:
        assert "gateway.access operation" in out


def test_the_access_line_written_without_a_record_is_the_records_line(make_gateway, capsys):
    # With only configure_logging's JSON handler, the access line is written without a
    # LogRecord; with any other handler, a record is made and formatted. Same line either way.
    from gateway.observability.logs import _sole_json_handler, configure_logging

    gateway = make_gateway()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.logThreads, logging.logProcesses)
    saved_more = (logging.logMultiprocessing, logging._srcfile)
    records: list[logging.LogRecord] = []
    try:
        configure_logging("json")
        access = logging.getLogger("gateway.access")
        assert _sole_json_handler(access, logging.INFO) is root.handlers[0]  # no record made
        gateway.post("{ orderItem(id: 1) { id } }", headers={**AUTH, "X-Request-ID": "direct"})
        listener = logging.Handler()
        listener.emit = records.append  # type: ignore[method-assign]
        root.addHandler(listener)
        assert _sole_json_handler(access, logging.INFO) is None
        gateway.post("{ orderItem(id: 1) { id } }", headers={**AUTH, "X-Request-ID": "record"})
    finally:
        root.handlers[:], root.level, logging.logThreads, logging.logProcesses = saved
        logging.logMultiprocessing, logging._srcfile = saved_more
    lines = [ln for ln in capsys.readouterr().out.splitlines() if '"gateway.access"' in ln]
    direct, via_record = (json.loads(line) for line in lines)
    [record] = [r for r in records if r.name == "gateway.access"]
    assert lines[1] == JsonFormatter().format(record)
    assert direct["request_id"] == "direct" and via_record["request_id"] == "record"
    assert list(direct) == list(via_record)  # the same fields in the same order
    varying = {"time", "request_id", "duration_ms"}
    assert {k: v for k, v in direct.items() if k not in varying} == {
        k: v for k, v in via_record.items() if k not in varying
    }
    assert direct["upstream_calls"] == 1 and direct["status"] == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", direct["time"])


@pytest.mark.parametrize(
    "fields",
    [{}, {"a": 'quo"te\n', "b": "héllo ☃", "c": [1, None, 2.5]}, {"when": time}, {"n": 2**64}],
)
def test_a_line_written_without_a_record_is_the_formatters_line(fields, capsys):
    from gateway.observability.logs import configure_logging, log_fields

    root, logger = logging.getLogger(), logging.getLogger("tests.direct")
    saved = (root.handlers[:], root.level, logging.logThreads, logging.logProcesses)
    saved_more = (logging.logMultiprocessing, logging._srcfile)
    records: list[logging.LogRecord] = []
    try:
        configure_logging("json")
        log_fields(logger, logging.WARNING, 'a "message"', fields)  # written directly
        listener = logging.Handler()
        listener.emit = records.append  # type: ignore[method-assign]
        root.addHandler(listener)
        log_fields(logger, logging.WARNING, 'a "message"', fields)  # through a record
    finally:
        root.handlers[:], root.level, logging.logThreads, logging.logProcesses = saved
        logging.logMultiprocessing, logging._srcfile = saved_more
    out, err = capsys.readouterr()
    [record] = records
    if "n" in fields:  # orjson refuses it: logging's error report, both times, and no line
        assert err.count("--- Logging error ---") == 2 and "tests.direct" not in out
        return
    direct, via_record = out.splitlines()[-2:]
    assert via_record == JsonFormatter().format(record)
    assert direct.split(",", 1)[1] == via_record.split(",", 1)[1]  # all but the time
    assert json.loads(direct)["time"][:16] == json.loads(via_record)["time"][:16]


def test_plain_metrics_expose_what_prometheus_clients_own_would():
    """The counters and histograms every operation moves are kept in plain numbers in one
    process: their samples are those of prometheus_client's Counter and Histogram after the
    same updates, at and around every bucket bound."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from gateway.observability import metrics as module

    ours = module.Metrics()
    reference = CollectorRegistry()
    operations = Counter(  # registered in the order of ours
        "oms_gateway_operations", ours.operations.documentation,
        ["operation", "outcome", "engine"], registry=reference,
    )  # fmt: skip
    histograms = {
        "operation": Histogram(
            "oms_gateway_operation_duration_seconds", ours.operation_seconds.documentation,
            ["operation", "engine"], buckets=module._LATENCY_BUCKETS, registry=reference,
        ),
        "phase": Histogram(
            "oms_gateway_phase_duration_seconds", ours.phase_seconds.documentation, ["phase"],
            buckets=module._PHASE_BUCKETS, registry=reference,
        ),
    }  # fmt: skip
    amounts = [0.0, 1e-9, 0.00009, 42.0, 1e300]
    for bound in module._PHASE_BUCKETS + module._LATENCY_BUCKETS:
        amounts += [bound, bound * (1 - 1e-12), bound * (1 + 1e-12)]
    for i, amount in enumerate(amounts):
        phase = ("execute", "upstream_wait")[i % 2]
        ours.phase(phase, amount)
        histograms["phase"].labels(phase).observe(amount)
        name = ("a", "b", "c")[i % 3]
        ours.operation(name, "ok", "compiled", amount)
        histograms["operation"].labels(name, "compiled").observe(amount)
        operations.labels(name, "ok", "compiled").inc()

    def families(text: str, *names: str) -> list[str]:
        """The lines of these families, their HELP and TYPE too, in order."""
        return [
            line
            for line in text.splitlines()
            if (line.split(" ")[2] if line.startswith("#") else line).startswith(names)
        ]

    names = ("oms_gateway_phase_", "oms_gateway_operation_duration", "oms_gateway_operations_t")
    expected = families(generate_latest(reference).decode(), *names)
    assert len(expected) == 6 + 2 * 20 + 3 * 17 + 3
    assert families(ours.exposition().decode(), *names) == expected
