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


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()  # reusable: it keeps no state


class Tracing:
    """A tracer from the given provider (or the global one), or nothing at all."""

    def __init__(self, enabled: bool, provider: Any = None) -> None:
        self.tracer: Any = None
        if enabled and trace is not None:
            self.tracer = trace.get_tracer("oms-gateway", tracer_provider=provider)

    def span(
        self, name: str, kind: str = "INTERNAL", parent: Any = None, **attributes: Any
    ) -> contextlib.AbstractContextManager[Any]:
        """A span as the current one; without a tracer, one shared context that yields None
        (no generator per operation and upstream call)."""
        if self.tracer is None:
            return _NO_SPAN
        return self._span(name, kind, parent, attributes)

    @contextlib.contextmanager
    def _span(self, name: str, kind: str, parent: Any, attributes: dict[str, Any]) -> Iterator[Any]:
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
    def ids(span: Any) -> tuple[str | None, str | None]:
        """The span's trace and span ids as W3C hex, for the access log."""
        context = span.get_span_context()
        if not context.is_valid:
            return None, None
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    @staticmethod
    def fail(span: Any, description: str) -> None:
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, description))


def tracing_unavailable() -> str | None:
    """Why tracing cannot run here (the extra is missing), or None; the CLI refuses to start."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        return f"OMS_TRACING=true needs the otel extra (pip install 'oms-gateway[otel]'): {exc}"
    return None


def tracing_resource() -> Any:
    """The SDK's resource detection (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), with the
    gateway's version, and `oms-gateway` as the name only when the environment gives none."""
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource

    from gateway.observability.version import VERSION

    resource = Resource.create({SERVICE_VERSION: VERSION})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "oms-gateway"}))
    return resource


def configure_otlp_exporter() -> Any:
    """A tracer provider exporting over OTLP, configured by the standard OTEL_* variables.

    Called by the CLI only, after `tracing_unavailable()` said the extra is there.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=tracing_resource())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
