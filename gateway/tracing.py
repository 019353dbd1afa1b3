"""Optional OpenTelemetry tracing: spans per operation and per upstream call, W3C propagation.

Installed with `pip install '.[otel]'`. Without the packages every function here is a no-op,
so the gateway runs unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Status, StatusCode
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]


class Tracing:
    """A tracer from the given provider (or the global one), or nothing at all."""

    def __init__(self, enabled: bool, provider: Any = None) -> None:
        self.tracer: Any = None
        if enabled and trace is not None:
            self.tracer = trace.get_tracer("oms-gateway", tracer_provider=provider)

    @contextlib.contextmanager
    def span(
        self, name: str, kind: str = "INTERNAL", parent: Any = None, **attributes: Any
    ) -> Iterator[Any]:
        if self.tracer is None:
            yield None
            return
        with self.tracer.start_as_current_span(
            name, context=parent, kind=getattr(trace.SpanKind, kind), attributes=attributes
        ) as span:
            yield span

    def inject(self, headers: dict[str, str]) -> None:
        """Add `traceparent` (and `tracestate`) for the current span to outgoing headers."""
        if self.tracer is not None:
            propagate.inject(headers)

    def extract(self, headers: Any) -> Any:
        """The parent context a client sent in `traceparent`, if any."""
        if self.tracer is None:
            return None
        return propagate.extract(headers)

    @staticmethod
    def fail(span: Any, description: str) -> None:
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, description))


def configure_otlp_exporter() -> Any:
    """A tracer provider exporting over OTLP, configured by the standard OTEL_* variables.

    Returns None when the extra is not installed. Called by the CLI only.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": "oms-gateway"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
