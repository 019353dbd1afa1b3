"""Prometheus metrics, one registry per app, with labels of bounded cardinality only."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from gateway.bounded import ByteLRU

_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The gateway's metrics; operation names are clients' words, so only the first
    `max_operation_names` distinct ones get their own label value."""

    def __init__(self, *, multiprocess: bool = False, max_operation_names: int = 200) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.operations = Counter(
            "oms_gateway_operations", "GraphQL operations by name and outcome.",
            ["operation", "outcome"], registry=r,
        )  # fmt: skip
        self.operation_seconds = Histogram(
            "oms_gateway_operation_duration_seconds", "Time to answer a GraphQL operation.",
            ["operation"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "oms_gateway_operations_in_flight", "GraphQL operations being answered.",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.upstream_requests = Counter(
            "oms_gateway_upstream_requests", "Upstream attempts by endpoint and HTTP status "
            "(or the transport failure).", ["endpoint", "status"], registry=r,
        )  # fmt: skip
        self.upstream_seconds = Histogram(
            "oms_gateway_upstream_duration_seconds", "Time of one upstream attempt.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_retries = Counter(
            "oms_gateway_upstream_retries", "Upstream attempts that were retries.",
            ["endpoint"], registry=r,
        )  # fmt: skip
        self.breaker_state = Gauge(
            "oms_gateway_circuit_breaker_state",
            "Upstream circuit breaker: 0 closed, 1 half-open, 2 open (the worst worker's).",
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.cache = Counter(
            "oms_gateway_cache_requests", "Cache look-ups by cache and result.",
            ["cache", "result"], registry=r,
        )  # fmt: skip
        self.shed = Counter(
            "oms_gateway_shed_requests", "Requests refused with 503 at capacity.", registry=r
        )
        self.cache_bytes = Gauge(
            "oms_gateway_cache_bytes", "Bytes an in-process cache charges for what it keeps.",
            ["cache"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.cache_entries = Gauge(
            "oms_gateway_cache_entries", "Entries an in-process cache keeps.",
            ["cache"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self._names: set[str] = set()
        self._max_names = max_operation_names

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _OPERATION_NAME.fullmatch(name):
            return "invalid"
        if name not in self._names:
            if len(self._names) >= self._max_names:
                return "other"
            self._names.add(name)
        return name

    def cache_size(self, cache: str, store: ByteLRU[Any]) -> None:
        self.cache_bytes.labels(cache).set(store.nbytes)
        self.cache_entries.labels(cache).set(len(store))

    def hit(self, cache: str, hit: bool) -> None:
        self.cache.labels(cache, "hit" if hit else "miss").inc()

    def exposition(self) -> bytes:
        if self.multiprocess:
            # Several workers (PROMETHEUS_MULTIPROC_DIR set at the entry point): each writes its
            # own files and the collector sums them here.
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def metrics_endpoint(
    metrics: Metrics, refresh: Callable[[], None]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        refresh()  # gauges that mirror state elsewhere are read at scrape time
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return endpoint
