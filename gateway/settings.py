"""Gateway settings: one frozen value, built from the environment only at the entry point."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: The upstream HTTP clients (gateway/upstream/transports); the first is the default.
UPSTREAM_CLIENTS = ("httpx", "aiohttp")
#: The fake OMS's public token (nothing secret): the fake accepts it, and GraphiQL prefills it
#: when `env` is demo. Declared here, the ground, so the server never imports the fake.
DEMO_TOKEN = "demo-token"


class Secret(str):
    """A string whose repr never shows its value, so a token cannot leak through a log line."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the app factory needs; every field has an `OMS_*` environment variable."""

    upstream_url: str = "http://127.0.0.1:8001"
    token: Secret | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 8000
    env: str = "development"
    # The largest `limit` the upstream is trusted to honour in one call (not documented upstream).
    upstream_max_limit: int = 100
    # The most items one `orderItems` field may ask for (first / pageSize).
    max_page_size: int = 500
    # The page size when a client gives neither `first` nor `pageSize`.
    default_page_size: int = 20
    # How many detail calls one operation may have in flight at once.
    detail_concurrency: int = 10
    upstream_connect_timeout: float = 2.0
    upstream_read_timeout: float = 10.0
    upstream_max_connections: int = 100
    # The upstream HTTP client: httpx (default) or aiohttp (needs the `aiohttp` extra).
    upstream_client: str = UPSTREAM_CLIENTS[0]
    # The largest upstream body, on the wire and decoded (a full 100-item page is ~190 KB).
    upstream_max_body_bytes: int = 8 * 1024 * 1024
    # Upstream resilience (see README "Reliability and limits").
    upstream_total_timeout: float = 12.0  # one attempt, connect to last byte
    operation_timeout: float = 20.0  # the whole operation, retries included
    upstream_retries: int = 2
    upstream_backoff_base: float = 0.05
    upstream_backoff_max: float = 1.0
    upstream_concurrency: int = 64  # upstream calls in flight per process
    breaker_failure_ratio: float = 0.5
    breaker_min_calls: int = 10
    breaker_window: float = 10.0
    breaker_cooldown: float = 5.0
    max_inflight_operations: int = 256  # beyond this the gateway sheds load with 503
    # Operation limits (see README "Reliability and limits").
    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 30
    max_directives: int = 50
    max_selections: int = 10_000  # field selections with fragment spreads expanded
    max_selection_set: int = 100  # fields and spreads written in one selection set
    max_field_comparisons: int = 1000  # what validation may compare among same-named fields
    max_introspection_depth: int = 15  # levels under `__schema`/`__type` (GraphiQL's needs 13)
    max_introspection_roots: int = 2  # `__schema`/`__type` fields, fragments expanded
    max_upstream_calls: int = 20
    # As many ids as the budget has calls: by default a list of ids is never refused by the
    # budget alone after `max_ids` let it through.
    max_ids: int = 20
    max_body_bytes: int = 65536
    # Report `extensions.cost` ({upstreamCalls, estimated, budget}) on every response.
    expose_cost: bool = False
    document_cache_size: int = 1000
    document_cache_bytes: int = 64 * 1024 * 1024  # parse + validation + compiled variants
    # Run cacheable operations through compiled projections (off: always graphql-core).
    compile_operations: bool = True
    # HTTP.
    cors_origins: str = ""  # comma-separated; empty means no cross-origin access
    # Request headers a browser may send cross-origin: Apollo Client's client awareness,
    # browser OpenTelemetry's trace context and the usual ones (comma-separated).
    cors_allow_headers: str = (
        "Authorization,Content-Type,X-Request-ID,traceparent,tracestate,"
        "apollographql-client-name,apollographql-client-version"
    )
    cors_max_age: int = 600  # seconds a browser may cache a preflight answer
    get_cache_max_age: int = 0  # seconds of `Cache-Control: private, max-age` for GET; 0: no-store
    apq_cache_size: int = 1000
    apq_cache_bytes: int = 16 * 1024 * 1024  # the in-process APQ store's documents
    compression_min_size: int = 1024
    graphiql_persist_headers: bool = False  # let GraphiQL keep headers (tokens) in localStorage
    # Trusted documents (gateway/server/persisted.py): a manifest, and whether only it is served.
    persisted_documents: str = ""
    persisted_only: bool = False
    # Operating it (see README "Deploying").
    redis_url: str = ""  # shared APQ documents and response cache; empty: in-process stores
    response_cache_ttl: float = 0.0  # seconds; 0 keeps the response cache off
    response_cache_size: int = 1000  # entries of the in-process response cache
    response_cache_bytes: int = 64 * 1024 * 1024  # bodies of the in-process response cache
    apq_ttl: int = 86400  # seconds a registered document lives in Redis
    log_format: str = "json"  # json | text
    log_level: str = "INFO"  # DEBUG | INFO | WARNING | ERROR
    tracing: bool = False  # OpenTelemetry spans (needs the `otel` extra)
    readiness_cache_seconds: float = 5.0
    workers: int = 1
    metrics_multiprocess: bool = False
    # What a client controls (see README "Deploying": gateway/server/protocol.py enforces these).
    header_timeout: float = 5.0  # seconds from connect or a request's first byte to its headers
    body_timeout: float = 10.0  # seconds from the headers to the end of the body
    keep_alive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    write_timeout: float = 30.0  # seconds a response may wait for the client to read it
    max_header_bytes: int = 16384  # the request line and headers together (431 above)
    max_authorization_bytes: int = 4096  # the Authorization header's value (431 above)
    max_receiving_connections: int = 512  # connections still sending a request, per process
    max_receiving_per_client: int = 64  # the same, per client address (503 above either)
    allowed_hosts: str = "127.0.0.1,localhost"  # comma-separated Host names; "*" allows any
    metrics_enabled: bool = True  # serve Prometheus metrics at all
    metrics_port: int = 0  # 0: /metrics on the API port; else a separate listener on this port

    def __post_init__(self) -> None:
        if self.token is not None and not isinstance(self.token, Secret):
            object.__setattr__(self, "token", Secret(self.token))
        for name in (
            "upstream_max_limit", "max_page_size", "default_page_size", "max_tokens", "max_depth",
            "max_aliases", "max_directives", "max_selections", "max_upstream_calls", "max_ids",
            "max_selection_set", "max_field_comparisons", "max_introspection_depth",
            "max_introspection_roots", "document_cache_bytes", "apq_cache_bytes",
            "response_cache_bytes",
            "max_body_bytes", "document_cache_size", "apq_cache_size", "upstream_concurrency",
            "max_inflight_operations", "breaker_min_calls", "response_cache_size", "workers",
            "max_header_bytes", "max_authorization_bytes", "max_receiving_connections",
            "max_receiving_per_client",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        if self.upstream_retries < 0:
            raise ValueError("upstream_retries must not be negative")
        if not 0 < self.breaker_failure_ratio <= 1:
            raise ValueError("breaker_failure_ratio must be in (0, 1]")
        for name in (
            "upstream_connect_timeout", "upstream_read_timeout", "upstream_total_timeout",
            "operation_timeout", "breaker_window", "breaker_cooldown", "header_timeout",
            "body_timeout", "keep_alive_timeout", "write_timeout",
        ):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.detail_concurrency < 1:
            raise ValueError("detail_concurrency must be at least 1")
        if self.log_format not in ("json", "text"):
            raise ValueError("log_format must be json or text")
        if self.response_cache_ttl < 0:
            raise ValueError("response_cache_ttl must not be negative")
        if self.persisted_only and not self.persisted_documents:
            raise ValueError("persisted_only needs persisted_documents (a manifest file)")
        if self.env not in ("development", "production", "demo"):
            raise ValueError("env must be development, production or demo")
        if self.upstream_client not in UPSTREAM_CLIENTS:
            raise ValueError(f"upstream_client must be one of {', '.join(UPSTREAM_CLIENTS)}")
        if self.upstream_max_body_bytes < 1:
            raise ValueError("upstream_max_body_bytes must be at least 1")
        if not self.allowed_host_list:
            raise ValueError('allowed_hosts must name at least one host (or "*")')
        for host in self.allowed_host_list:  # Starlette's TrustedHostMiddleware patterns
            if "*" in host[1:] or (host.startswith("*") and host != "*" and host[:2] != "*."):
                raise ValueError(f"allowed_hosts: {host!r} is not a name, *.domain or *")
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError("metrics_port must be 0 (the API port) or a port number")
        if self.metrics_port and self.workers > 1:
            # Each worker would bind the port; metrics of several workers go through the API port.
            raise ValueError("metrics_port needs workers=1")
        _check_upstream_url(self.upstream_url)
        if self.redis_url and urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"redis_url must be a redis://, rediss:// or unix:// URL, not {self.redis_url!r}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if self.cors_max_age < 0:
            raise ValueError("cors_max_age must not be negative")

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def allowed_host_list(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def cors_allow_header_list(self) -> list[str]:
        return [h.strip() for h in self.cors_allow_headers.split(",") if h.strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Settings:
        """Read `OMS_<FIELD>` variables; `overrides` (CLI flags that were given) win."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"OMS_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check_upstream_url(url: str) -> None:
    """An absolute http(s) URL with a host, so a typo fails at start-up, not on every call."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"upstream_url must be an absolute http(s) URL such as http://oms.example:8000, "
            f"not {url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"upstream_url must not carry a query or fragment: {url!r}")


def _coerce(name: str, annotation: Any, raw: str) -> Any:
    kind = str(annotation)
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"OMS_{name.upper()} must be true or false")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"OMS_{name.upper()} must be a number") from exc
    return raw


#: Environment variable for each setting, for the README and the CLI help.
ENV_VARS = {f.name: f"OMS_{f.name.upper()}" for f in dataclasses.fields(Settings)}
