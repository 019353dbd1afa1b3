"""The application factory: `create_app(settings)` returns the Starlette app."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from brotli_asgi import BrotliMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.execution.executor import Executor
from gateway.observability.metrics import Metrics, metrics_endpoint
from gateway.observability.tracing import Tracing
from gateway.server.apq import DocumentStore, MemoryDocumentStore
from gateway.server.endpoint import GraphQLEndpoint, HttpRequest
from gateway.server.graphiql import graphiql_response, graphiql_routes
from gateway.server.guards import HeaderLimits
from gateway.server.persisted import TrustedDocuments
from gateway.server.response_cache import MemoryResponseCache, ResponseCache
from gateway.server.shedding import LoadShedding, declared_length
from gateway.settings import Settings
from gateway.upstream.client import OmsClient, UpstreamSession, open_http_client
from gateway.upstream.resilience import BreakerState, Clock, SystemClock
from resolvers.context import Context
from resolvers.loaders import Loaders
from resolvers.pagination import PageCap
from schema import make_schema

# What the /graphql route takes; the endpoint answers each (405 with Allow for the last three).
GRAPHQL_METHODS = ("GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE")
_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Runtime:
    """What lives as long as the app: settings, the upstream client, stores, metrics."""

    def __init__(
        self, settings: Settings, tracer_provider: Any = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        # The upstream's deadlines, breaker and waits, and the response cache's expiry.
        self.clock = clock or SystemClock()
        self.metrics = Metrics(multiprocess=settings.metrics_multiprocess)
        self.tracing = Tracing(enabled=settings.tracing, provider=tracer_provider)
        self.documents: DocumentStore = MemoryDocumentStore(
            settings.apq_cache_size, settings.apq_cache_bytes
        )
        self.responses: ResponseCache | None = None
        if settings.response_cache_ttl > 0:
            self.responses = MemoryResponseCache(
                settings.response_cache_size, settings.response_cache_bytes, self.clock.monotonic
            )
        self.executor: Executor | None = None  # set by create_app, for the cache-size gauges
        self._client: OmsClient | None = None
        # What this app learned about its upstream's real page cap (see resolvers/pagination.py).
        self.page_cap = PageCap()
        self._ready: tuple[float, bool] = (float("-inf"), False)

    @property
    def client(self) -> OmsClient:
        if self._client is None:
            raise RuntimeError("the upstream client is opened by the app's lifespan")
        return self._client

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(open_http_client(self.settings))
            self._client = OmsClient(
                http, self.settings, self.metrics, self.tracing, clock=self.clock
            )
            if self.settings.redis_url:
                await stack.enter_async_context(self._open_redis())
            try:
                yield
            finally:
                self._client = None

    @contextlib.asynccontextmanager
    async def _open_redis(self) -> AsyncIterator[None]:
        from redis.asyncio import Redis

        from gateway.server.redis_stores import RedisDocumentStore, RedisResponseCache

        redis = Redis.from_url(self.settings.redis_url, socket_timeout=1.0)
        self.documents = RedisDocumentStore(redis, ttl=self.settings.apq_ttl)
        if self.settings.response_cache_ttl > 0:
            self.responses = RedisResponseCache(redis)
        try:
            yield
        finally:
            await redis.aclose()

    def authorization(self, request: HttpRequest) -> str | None:
        """The client's header as is; else the service token; else nothing (no call is made).
        A header sent empty is the client's (bad) credential, never a cue for the token."""
        header = request.headers.get("authorization")
        if header is not None:
            return header
        token = self.settings.token
        if token:
            return token if token.lower().startswith("token ") else f"Token {token}"
        return None

    def context(self, request: HttpRequest, request_id: str) -> Context:
        """A fresh context per operation: aiodataloader binds to the running loop."""
        settings = self.settings
        # Both dataclasses by position (client, authorization, deadline, request_id; settings,
        # session, loaders, request_id, page_cap): half the cost of keywords.
        deadline = self.clock.monotonic() + settings.operation_timeout
        client = self._client
        if client is None:
            client = self.client  # raises: the lifespan has not opened it
        # `authorization(request)` for a request that sends the header (most do), inline.
        authorization = request.headers.get("authorization")
        if authorization is None:
            authorization = self.authorization(request)
        session = UpstreamSession(client, authorization, deadline, request_id)
        loaders = Loaders(session, detail_concurrency=settings.detail_concurrency)
        return Context(settings, session, loaders, request_id, self.page_cap)

    def refresh_gauges(self) -> None:
        if self._client is not None:
            state = self._client.resilience.breaker.state
            self.metrics.breaker_state.set(_BREAKER_GAUGE[state])
        if self.executor is not None:
            self.metrics.cache_size("document", self.executor.cache)
        if isinstance(self.documents, MemoryDocumentStore):
            self.metrics.cache_size("apq", self.documents.documents)
        if isinstance(self.responses, MemoryResponseCache):
            self.metrics.cache_size("response", self.responses.entries)

    async def upstream_reachable(self) -> bool:
        """A cached probe: any HTTP answer (401 without a token is fine) means reachable."""
        checked_at, ready = self._ready
        if time.monotonic() - checked_at < self.settings.readiness_cache_seconds:
            return ready
        ready = await self.client.reachable()
        self._ready = (time.monotonic(), ready)
        return ready


class DirectRoute:
    """The innermost middleware: a request the route `path` would take (its path exactly, no
    root path, a method it accepts) goes straight to `endpoint`, past starlette's exception
    middleware and router (their matching and send wrappers, per request); anything else goes
    on to them. The endpoint raises no HTTPException (it answers its own errors, and masks its
    bugs as a 500), so the exception middleware has nothing to do for it."""

    def __init__(
        self, app: ASGIApp, *, path: str, endpoint: ASGIApp, methods: tuple[str, ...]
    ) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint
        self.methods = frozenset(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and not scope.get("root_path")
            and scope["method"] in self.methods
        ):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Names whose raw bytes are the host starlette's parser reads from them, unchanged.
_PLAIN_NAME = re.compile(rb"[a-z0-9.-]+")


def _plain_hosts(allowed_hosts: Sequence[str]) -> frozenset[bytes]:
    """The allowed names a `Host` may match byte for byte (lower case, no wildcard)."""
    return frozenset(
        name
        for name in (pattern.encode("latin-1") for pattern in allowed_hosts)
        if _PLAIN_NAME.fullmatch(name)
    )


class TrustedHosts(TrustedHostMiddleware):
    """starlette's middleware, which lets a request whose first `Host` is exactly one of the
    plain allowed names (lower case, no wildcard), with or without a port of digits, through at
    once: starlette accepts each of those too. Anything else (another case, a wildcard, an IPv6
    literal, a foreign or malformed host) is left to starlette, which decides as before."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Sequence[str] | None = None, www_redirect: bool = True
    ) -> None:
        super().__init__(app, allowed_hosts, www_redirect)
        self.plain = _plain_hosts(self.allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allow_any:
            for name, value in scope["headers"]:
                if name == b"host":
                    host, colon, port = value.partition(b":")
                    if host in self.plain and (not colon or port.isdigit()):
                        await self.app(scope, receive, send)
                        return
                    break
        await super().__call__(scope, receive, send)


class Compression(BrotliMiddleware):
    """brotli_asgi's middleware (brotli, else gzip), which passes a request whose first
    `Accept-Encoding` names neither on to the app as it is: that case is told here from the raw
    header list, before the middleware builds starlette's `Headers` and reads it twice."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.excluded_handlers:
            wanted = (b"br", b"gzip") if self.gzip_fallback else (b"br",)
            for name, value in scope["headers"]:
                if name == b"accept-encoding":
                    if any(encoding in value for encoding in wanted):
                        break
                    await self.app(scope, receive, send)
                    return
            else:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class FrontDoor:
    """The usual request to /graphql, let in at the app's entry. What HeaderLimits,
    TrustedHosts, Compression and DirectRoute each decide from the header list is decided here
    in one pass over it, and such a request goes to the load shedder (the stack's own, so one
    count of operations in flight) and then to the endpoint, or to compression around it when
    the client accepts brotli or gzip; any request one of them would refuse, redirect or route
    elsewhere (or that no plain allowed host names) takes the whole stack, which decides as it
    always has. Not used with CORS, which reads every request."""

    def __init__(
        self,
        *,
        path: str,
        methods: tuple[str, ...],
        endpoint: ASGIApp,
        compressed: ASGIApp,
        shedding: LoadShedding,
        allowed_hosts: Sequence[str],
        max_authorization: int,
        max_total: int,
    ) -> None:
        self.path = path
        self.methods = frozenset(methods)
        self.endpoint = endpoint
        self.compressed = compressed
        self.shedding = shedding
        self.any_host = "*" in allowed_hosts
        self.plain = _plain_hosts([pattern.lower() for pattern in allowed_hosts])
        self.max_authorization = max_authorization
        self.max_total = max_total

    def app_for(self, scope: Scope) -> tuple[ASGIApp, int] | None:
        """The app behind the shedder for this request and its declared body length (the
        first Content-Length when all digits, else -1), or None for the whole stack."""
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope.get("root_path")
            or scope["method"] not in self.methods
        ):
            return None
        total = 0
        host = encoding = length = None
        for name, value in scope["headers"]:
            total += len(name) + len(value) + 4  # as HeaderLimits counts
            if name == b"authorization":
                if len(value) > self.max_authorization:
                    return None
            elif name == b"host":
                if host is None:
                    host = value
            elif name == b"content-length":
                if length is None:
                    length = value
            elif name == b"accept-encoding" and encoding is None:
                encoding = value
        if total > self.max_total:
            return None
        if not self.any_host:  # the first Host, as TrustedHosts reads it
            if host is None:
                return None
            name, colon, port = host.partition(b":")
            if name not in self.plain or (colon and not port.isdigit()):
                return None
        declared = declared_length(length)
        if encoding is not None and (b"br" in encoding or b"gzip" in encoding):
            return self.compressed, declared
        return self.endpoint, declared


# What starlette's ServerErrorMiddleware answers (not in debug, no handler of 500) when the app
# fails before it sent anything.
_SERVER_ERROR = PlainTextResponse("Internal Server Error", status_code=500)


class GatewayApp(Starlette):
    """starlette's app, which lets the usual /graphql request in through its `front` door
    (when set) rather than through its whole middleware stack (ServerErrorMiddleware, then each
    guard in turn: a call, a frame and a header scan each)."""

    front: FrontDoor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        found = front.app_for(scope) if front is not None else None
        if found is None:
            await super().__call__(scope, receive, send)
            return
        app, declared = found
        scope["app"] = self
        shedding = front.shedding  # type: ignore[union-attr]
        try:
            received = await shedding.receive_body(scope, receive, declared)
        except Exception:
            # As ServerErrorMiddleware: a 500 when nothing was sent, and the error raised on.
            await _SERVER_ERROR(scope, receive, send)
            raise
        if received is None:
            return  # the client left while sending
        # The endpoint answers its own failures (a masked 500), so only a failed send can
        # raise from here, when ServerErrorMiddleware sends nothing more either.
        await shedding.admit(app, scope, received, receive, send)


def create_app(
    settings: Settings, *, tracer_provider: Any = None, clock: Clock | None = None
) -> Starlette:
    """`clock` is for tests: the time the upstream rules and the response cache read, which
    they move instead of waiting."""
    runtime = Runtime(settings, tracer_provider, clock)
    schema = make_schema(settings)
    runtime.executor = Executor(schema._schema, settings)
    runtime.executor.on_phase = runtime.metrics.phase
    endpoint = GraphQLEndpoint(
        settings,
        runtime.executor,
        runtime.documents,
        runtime.context,
        lambda: graphiql_response(settings),
        metrics=runtime.metrics,
        tracing=runtime.tracing,
        responses=runtime.responses,
        trusted=TrustedDocuments.load(settings.persisted_documents, only=settings.persisted_only),
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        # Ready means this instance can reach the upstream. An open breaker does not drain it:
        # every instance sees the same upstream, and a fleet drained at once serves nobody
        # (README "Deploying"); the body still reports the breaker.
        breaker = runtime.client.resilience.breaker.state
        ready = await runtime.upstream_reachable()
        body = {"ready": ready, "upstream_reachable": ready, "circuit_breaker": breaker.value}
        return JSONResponse(body, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            # Redis, when configured, replaces the in-process stores once it is connected.
            endpoint.documents = runtime.documents
            endpoint.responses = runtime.responses
            yield

    # One shedder, in the stack and at the front door: one count of operations in flight. The
    # app it wraps in the stack is set when starlette builds the stack.
    shedder = LoadShedding(
        endpoint,
        path="/graphql",
        limit=settings.max_inflight_operations,
        max_body=settings.max_body_bytes,
        on_shed=runtime.metrics.shed.inc,
    )

    def shedding_layer(app: ASGIApp) -> ASGIApp:
        shedder.app = app
        return shedder

    shedding = Middleware(shedding_layer)
    # Brotli when the client accepts it, else gzip; both only above the minimum size.
    compression_options: dict[str, Any] = {
        "minimum_size": settings.compression_min_size,
        "quality": 4,
        "gzip_fallback": True,
    }
    compression = Middleware(Compression, **compression_options)
    # Outermost first: header sizes before anything reads them, the Host before any route,
    # CORS around shedding so a browser can read a shed 503 and its Retry-After.
    middleware = [
        Middleware(
            HeaderLimits,
            max_authorization=settings.max_authorization_bytes,
            max_total=settings.max_header_bytes,
        ),
        # Against DNS rebinding: a page on attacker.example resolved to this address must not
        # reach data with the service token.
        Middleware(TrustedHosts, allowed_hosts=settings.allowed_host_list, www_redirect=False),
        shedding,
        compression,
        Middleware(DirectRoute, path="/graphql", endpoint=endpoint, methods=GRAPHQL_METHODS),
    ]
    if settings.cors_origin_list:
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=settings.cors_allow_header_list,
            expose_headers=["X-Request-ID", "ETag", "Retry-After"],
            max_age=settings.cors_max_age,
        )
        middleware.insert(2, cors)
    routes: list[BaseRoute] = [
        Route("/graphql", endpoint, methods=GRAPHQL_METHODS),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if settings.metrics_enabled and not settings.metrics_port:
        routes.append(metrics_route(runtime))
    if not settings.production:
        routes += graphiql_routes()  # production serves no GraphiQL page and no assets
    app = GatewayApp(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
    )
    if not settings.cors_origin_list:
        app.front = FrontDoor(
            path="/graphql",
            methods=GRAPHQL_METHODS,
            endpoint=endpoint,
            compressed=Compression(endpoint, **compression_options),
            shedding=shedder,
            allowed_hosts=settings.allowed_host_list,
            max_authorization=settings.max_authorization_bytes,
            max_total=settings.max_header_bytes,
        )
    app.state.runtime = runtime
    return app


def metrics_route(runtime: Runtime) -> Route:
    return Route("/metrics", metrics_endpoint(runtime.metrics, runtime.refresh_gauges))


def create_metrics_app(app: Starlette) -> Starlette:
    """Only /metrics of `app` (whose lifespan runs elsewhere), for a separate `metrics_port`."""
    settings: Settings = app.state.runtime.settings
    return Starlette(
        routes=[metrics_route(app.state.runtime)],
        middleware=[
            Middleware(
                HeaderLimits,
                max_authorization=settings.max_authorization_bytes,
                max_total=settings.max_header_bytes,
            )
        ],
    )
