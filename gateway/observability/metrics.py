"""Prometheus metrics, one registry per app, with labels of bounded cardinality only."""

from __future__ import annotations

import functools
import gc
import os
import re
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response

from gateway.bounded import ByteLRU
from gateway.errors import ErrorCode
from gateway.observability.version import PYTHON, VERSION

_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_PHASE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1, 2.5, 5, 10, 30)  # fmt: skip
# The error label takes only the gateway's own codes: a bound by membership, not by shape.
_CODES = frozenset(ErrorCode)

# The multi-process collector writes no `_created` samples, so the single-process registry
# must not either: the same families whatever the number of workers.
disable_created_metrics()

# Garbage collections per generation, counted by one process-wide callback into plain integers
# (a callback must not take the metrics' locks: a collection can start while they are held).
# Each app's metrics move the new counts into counters at every operation and scrape, so
# several workers' counts add up like any other counter.
_GC_COUNTS = [[0, 0, 0] for _ in range(3)]  # generation -> collections, collected, uncollectable


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop":
        counts = _GC_COUNTS[info["generation"]]
        counts[0] += 1
        counts[1] += info.get("collected", 0)
        counts[2] += info.get("uncollectable", 0)


if _on_gc not in gc.callbacks:
    gc.callbacks.append(_on_gc)


class _KnownChildren:
    """`labels(...)` answered from the children already made. prometheus_client converts,
    validates and takes a lock on every call (~1.5 us, several times per operation); the
    gateway's label values are bounded and its children are never removed, so the first child
    made for a set of values serves every later call."""

    _known_children: dict[tuple[Any, ...], Any]

    def labels(self, *values: Any, **named: Any) -> Any:
        if not named:
            try:
                return self._known_children[values]
            except AttributeError:
                self._known_children = {}
            except KeyError:
                pass
            child = self._known_children[values] = super().labels(*values)  # type: ignore[misc]
            return child
        return super().labels(*values, **named)  # type: ignore[misc]


class _Counter(_KnownChildren, Counter):
    pass


class _Gauge(_KnownChildren, Gauge):
    pass


class _Histogram(_KnownChildren, Histogram):
    pass


class _PlainCounter:
    """A labelled counter of one process whose children are plain floats, read by the registry
    when scraped, for the counters every operation or upstream call moves: prometheus_client's
    own child takes a lock and its checks per `inc()` (~1 us). The gateway updates them from
    its one event loop, where its scrapes also run. The samples are those of a `Counter` (no
    `_created`, as `disable_created_metrics` makes them). The public way a library has to
    publish values it keeps itself: a custom collector (prometheus_client has no cheaper
    `inc`/`observe` than its children's)."""

    def __init__(
        self, name: str, documentation: str, labelnames: list[str], *, registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.children: dict[tuple[str, ...], _CounterChild] = {}
        registry.register(self)

    def labels(self, *values: str) -> _CounterChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = _CounterChild()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        yield family


class _CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self) -> None:
        self.value += 1.0


class _PlainHistogram:
    """A labelled histogram of one process as plain floats (see `_PlainCounter`): per child,
    the count of each bucket (not cumulative; summed when scraped) and the sum."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: list[str],
        *,
        buckets: tuple[float, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.bounds = (*(float(b) for b in buckets), float("inf"))
        self.children: dict[tuple[str, ...], _HistogramChild] = {}
        registry.register(self)

    def labels(self, *values: str) -> _HistogramChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = _HistogramChild(self.bounds)
        return child

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        names = [floatToGoString(bound) for bound in self.bounds]
        for values, child in self.children.items():
            total = 0.0
            buckets = []
            for name, count in zip(names, child.counts, strict=True):
                total += count
                buckets.append((name, total))
            family.add_metric(values, buckets, child.sum)
        yield family


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.sum += amount
        # The first bucket whose bound is at least `amount`, as Histogram.observe finds it; a
        # NaN, which no bucket takes there, counts in none here either.
        if amount == amount:
            self.counts[bisect_left(self.bounds, amount)] += 1.0


class Metrics:
    """The gateway's metrics; operation names are clients' words, so only the first
    `max_operation_names` distinct ones get their own label value."""

    def __init__(self, *, multiprocess: bool = False, max_operation_names: int = 200) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # What every operation or upstream call moves is kept in plain numbers by one process;
        # with several workers, each change is written to the workers' files as it comes.
        per_call_counter: Callable[..., Any] = _PlainCounter
        per_call_histogram: Callable[..., Any] = _PlainHistogram
        if multiprocess:
            per_call_counter, per_call_histogram = _Counter, _Histogram
        self.operations = per_call_counter(
            "oms_gateway_operations", "GraphQL operations by name, outcome and the engine that "
            "answered (compiled, graphql-core; none when nothing ran).",
            ["operation", "outcome", "engine"], registry=r,
        )  # fmt: skip
        self.operation_seconds = per_call_histogram(
            "oms_gateway_operation_duration_seconds", "Time to answer a GraphQL operation.",
            ["operation", "engine"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.fallbacks = _Counter(
            "oms_gateway_compiled_fallbacks", "Operations graphql-core answered instead of the "
            "compiled path, by reason.", ["reason"], registry=r,
        )  # fmt: skip
        self.in_flight = _Gauge(
            "oms_gateway_operations_in_flight", "GraphQL operations being answered.",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        # One process counts its operations in flight in a plain integer that the gauge reads
        # when scraped, rather than with two locked updates per operation; with several workers
        # each one's files are summed (livesum), so there every change is written as it comes.
        self.operations_in_flight = 0
        if not multiprocess:
            self.in_flight.set_function(lambda: self.operations_in_flight)
        self.upstream_requests = per_call_counter(
            "oms_gateway_upstream_requests", "Upstream attempts by endpoint and HTTP status "
            "(or the transport failure).", ["endpoint", "status"], registry=r,
        )  # fmt: skip
        self.upstream_seconds = per_call_histogram(
            "oms_gateway_upstream_duration_seconds", "Time of one upstream attempt.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.upstream_retries = _Counter(
            "oms_gateway_upstream_retries", "Upstream attempts that were retries.",
            ["endpoint"], registry=r,
        )  # fmt: skip
        self.breaker_state = _Gauge(
            "oms_gateway_circuit_breaker_state",
            "Upstream circuit breaker: 0 closed, 1 half-open, 2 open (the worst worker's).",
            registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.cache = _Counter(
            "oms_gateway_cache_requests", "Cache look-ups by cache and result.",
            ["cache", "result"], registry=r,
        )  # fmt: skip
        self.shed = _Counter(
            "oms_gateway_shed_requests", "Requests refused with 503 at capacity.", registry=r
        )
        self.cache_bytes = _Gauge(
            "oms_gateway_cache_bytes", "Bytes an in-process cache charges for what it keeps.",
            ["cache"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.cache_entries = _Gauge(
            "oms_gateway_cache_entries", "Entries an in-process cache keeps.",
            ["cache"], registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.build_info = _Gauge(
            "oms_gateway_build_info", "The running gateway's version and Python (always 1).",
            ["version", "python"], registry=r, multiprocess_mode="max",
        )  # fmt: skip
        self.build_info.labels(VERSION, PYTHON).set(1)
        self.errors = _Counter(
            "oms_gateway_errors", "Errors returned to clients, by extensions.code.",
            ["code"], registry=r,
        )  # fmt: skip
        self.phase_seconds = per_call_histogram(
            "oms_gateway_phase_duration_seconds", "Time of one phase of an operation: parse "
            "and validate (when a document is not cached), execute (the gateway's own work "
            "during execution) and upstream_wait (time with an upstream call in flight).",
            ["phase"], buckets=_PHASE_BUCKETS, registry=r,
        )  # fmt: skip
        self._gc = [
            _Counter(name, text, ["generation"], registry=r)
            for name, text in (
                ("python_gc_collections", "Garbage collections, by generation."),
                ("python_gc_objects_collected", "Objects collected during gc."),
                ("python_gc_objects_uncollectable", "Uncollectable objects found during gc."),
            )
        ]
        self._gc_seen = [list(counts) for counts in _GC_COUNTS]
        for counter in self._gc:  # every generation present from the start
            for generation in range(3):
                counter.labels(str(generation))
        if not multiprocess:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self._names: set[str] = set()
        self._max_names = max_operation_names
        # The children each operation updates, found with one look-up per metric pair rather
        # than a `labels(...)` call per metric; bounded as the label values are.
        self._operation_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._upstream_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._phase_children: dict[str, Any] = {}

    def operation_started(self) -> None:
        if self.multiprocess:
            self.in_flight.inc()
        else:
            self.operations_in_flight += 1

    def operation_ended(self) -> None:
        if self.multiprocess:
            self.in_flight.dec()
        else:
            self.operations_in_flight -= 1

    def operation_label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self._names:  # a name given its label before is a valid one
            return name
        if not _OPERATION_NAME.fullmatch(name):
            return "invalid"
        if len(self._names) >= self._max_names:
            return "other"
        self._names.add(name)
        return name

    def cache_size(self, cache: str, store: ByteLRU[Any]) -> None:
        self.cache_bytes.labels(cache).set(store.nbytes)
        self.cache_entries.labels(cache).set(len(store))

    def operation(self, label: str, outcome: str, engine: str, seconds: float) -> None:
        """An operation answered: counted, and its duration observed."""
        key = (label, outcome, engine)
        children = self._operation_children.get(key)
        if children is None:
            children = self._operation_children[key] = (
                self.operations.labels(label, outcome, engine),
                self.operation_seconds.labels(label, engine),
            )
        children[0].inc()
        children[1].observe(seconds)

    def upstream_attempt(self, endpoint: str, status: str, seconds: float) -> None:
        """One upstream attempt ended with `status`: counted, and its duration observed."""
        key = (endpoint, status)
        children = self._upstream_children.get(key)
        if children is None:
            children = self._upstream_children[key] = (
                self.upstream_requests.labels(endpoint, status),
                self.upstream_seconds.labels(endpoint),
            )
        children[0].inc()
        children[1].observe(seconds)

    def phase(self, phase: str, seconds: float) -> None:
        child = self._phase_children.get(phase)
        if child is None:
            child = self._phase_children[phase] = self.phase_seconds.labels(phase)
        child.observe(seconds if seconds > 0.0 else 0.0)  # a clock's step back counts as 0

    def execution(self, execute: float, upstream_wait: float | None) -> None:
        """The execute phase and, when the operation called upstream, the upstream_wait one."""
        self.phase("execute", execute)
        if upstream_wait is not None:
            self.phase("upstream_wait", upstream_wait)

    def count_errors(self, codes: Iterable[str]) -> None:
        for code in codes:
            self.errors.labels(code if code in _CODES else "OTHER").inc()
        self.flush_gc()

    def flush_gc(self) -> None:
        if self._gc_seen == _GC_COUNTS:
            return  # no collection since the last flush: most operations (one C comparison)
        for generation, counts in enumerate(_GC_COUNTS):
            seen = self._gc_seen[generation]
            for i, counter in enumerate(self._gc):
                if counts[i] > seen[i]:
                    counter.labels(str(generation)).inc(counts[i] - seen[i])
                    seen[i] = counts[i]

    def hit(self, cache: str, hit: bool) -> None:
        self.cache.labels(cache, "hit" if hit else "miss").inc()

    def exposition(self) -> bytes:
        if self.multiprocess:
            # Several workers (PROMETHEUS_MULTIPROC_DIR set at the entry point): each writes its
            # own files and the collector sums them here.
            from prometheus_client import multiprocess

            self.flush_gc()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(WorkerProcesses(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
            PlatformCollector(registry=registry)
            return generate_latest(registry)
        self.flush_gc()
        return generate_latest(self.registry)


class WorkerProcesses:
    """`process_*` for all workers: each one's /proc figures, summed like their counters.

    The workers are the processes that wrote metric files into the multi-process directory;
    one that has exited has no /proc entry and drops out.
    """

    _SUMMED = ("process_virtual_memory_bytes", "process_resident_memory_bytes",
               "process_cpu_seconds", "process_open_fds")  # fmt: skip
    _LEAST = ("process_start_time_seconds", "process_max_fds")

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def pids(self) -> set[int]:
        pids = set()
        for name in os.listdir(self.directory):
            stem = name.removesuffix(".db").rsplit("_", 1)[-1]
            if stem.isdigit():
                pids.add(int(stem))
        return pids

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, tuple[Metric, float]] = {}
        for pid in sorted(self.pids()):
            for family in ProcessCollector(
                pid=functools.partial(int, pid), registry=None
            ).collect():
                value = family.samples[0].value
                if family.name not in totals:
                    totals[family.name] = (family, value)
                elif family.name in self._LEAST:
                    totals[family.name] = (family, min(totals[family.name][1], value))
                else:
                    totals[family.name] = (family, totals[family.name][1] + value)
        for name, (family, value) in totals.items():
            kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
            text = family.documentation
            if name in self._SUMMED:
                text += " Summed over the workers."
            yield kind(name, text, value=value)


def metrics_endpoint(
    metrics: Metrics, refresh: Callable[[], None]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        refresh()  # gauges that mirror state elsewhere are read at scrape time
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return endpoint
