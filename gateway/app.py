"""The application factory: `create_app(settings)` returns the Starlette app."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from brotli_asgi import BrotliMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.apq import DocumentStore, MemoryDocumentStore
from gateway.execution import Executor
from gateway.graphiql import graphiql_response, graphiql_routes
from gateway.http import GraphQLEndpoint
from gateway.metrics import Metrics, metrics_endpoint
from gateway.resilience import BreakerState
from gateway.response_cache import MemoryResponseCache, ResponseCache
from gateway.settings import Settings
from gateway.shedding import LoadShedding
from gateway.tracing import Tracing
from gateway.upstream import LIST_PATH, OmsClient, UpstreamSession, open_http_client
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import make_schema

log = logging.getLogger("gateway.readiness")

_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class Runtime:
    """What lives as long as the app: settings, the upstream client, stores, metrics."""

    def __init__(self, settings: Settings, tracer_provider: Any = None) -> None:
        self.settings = settings
        self.metrics = Metrics(multiprocess=settings.metrics_multiprocess)
        self.tracing = Tracing(enabled=settings.tracing, provider=tracer_provider)
        self.documents: DocumentStore = MemoryDocumentStore(settings.apq_cache_size)
        self.responses: ResponseCache | None = None
        if settings.response_cache_ttl > 0:
            self.responses = MemoryResponseCache(settings.response_cache_size)
        self._client: OmsClient | None = None
        self._redis: Any = None
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
            self._client = OmsClient(http, self.settings, self.metrics, self.tracing)
            if self.settings.redis_url:
                await stack.enter_async_context(self._open_redis())
            try:
                yield
            finally:
                self._client = None

    @contextlib.asynccontextmanager
    async def _open_redis(self) -> AsyncIterator[None]:
        from redis.asyncio import Redis

        from gateway.redis_stores import RedisDocumentStore, RedisResponseCache

        redis = Redis.from_url(self.settings.redis_url, socket_timeout=1.0)
        self.documents = RedisDocumentStore(redis, ttl=self.settings.apq_ttl)
        if self.settings.response_cache_ttl > 0:
            self.responses = RedisResponseCache(redis)
        try:
            yield
        finally:
            await redis.aclose()

    def authorization(self, request: Request) -> str | None:
        """The client's header as is; else the service token; else nothing (no call is made)."""
        header = request.headers.get("authorization")
        if header:
            return header
        token = self.settings.token
        if token:
            return token if token.lower().startswith("token ") else f"Token {token}"
        return None

    def context(self, request: Request, request_id: str) -> Context:
        """A fresh context per operation: aiodataloader binds to the running loop."""
        settings = self.settings
        session = UpstreamSession(
            self.client,
            self.authorization(request),
            deadline=time.monotonic() + settings.operation_timeout,
            request_id=request_id,
        )
        return Context(
            settings=settings,
            session=session,
            loaders=Loaders(session, detail_concurrency=settings.detail_concurrency),
            request_id=request_id,
        )

    def refresh_gauges(self) -> None:
        if self._client is not None:
            state = self._client.resilience.breaker.state
            self.metrics.breaker_state.set(_BREAKER_GAUGE[state])

    async def upstream_reachable(self) -> bool:
        """A cached probe: any HTTP answer (401 without a token is fine) means reachable."""
        checked_at, ready = self._ready
        if time.monotonic() - checked_at < self.settings.readiness_cache_seconds:
            return ready
        try:
            await self.client.http.get(LIST_PATH, params={"limit": 1}, timeout=2.0)
            ready = True
        except httpx.HTTPError as exc:
            ready = False
            # The cause, once per probe (probes are cached): the endpoint template and the
            # exception class, never a URL with credentials in it.
            log.warning(
                "readiness probe failed: %s %s", LIST_PATH, type(exc).__name__,
                extra={"endpoint": LIST_PATH, "cause": type(exc).__name__},
            )  # fmt: skip
        self._ready = (time.monotonic(), ready)
        return ready


def create_app(settings: Settings, *, tracer_provider: Any = None) -> Starlette:
    runtime = Runtime(settings, tracer_provider)
    schema = make_schema()
    executor = Executor(schema._schema, settings)
    executor.on_phase = runtime.metrics.phase
    endpoint = GraphQLEndpoint(
        settings,
        executor,
        runtime.documents,
        runtime.context,
        lambda: graphiql_response(settings),
        metrics=runtime.metrics,
        tracing=runtime.tracing,
        responses=runtime.responses,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        breaker = runtime.client.resilience.breaker.state
        reachable = await runtime.upstream_reachable()
        ready = reachable and breaker is not BreakerState.OPEN
        if reachable and not ready:
            log.warning("not ready: the circuit breaker is open", extra={"cause": "circuit_open"})
        body = {"ready": ready, "upstream_reachable": reachable, "circuit_breaker": breaker.value}
        return JSONResponse(body, status_code=200 if ready else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            # Redis, when configured, replaces the in-process stores once it is connected.
            endpoint.documents = runtime.documents
            endpoint.responses = runtime.responses
            yield

    shedding = Middleware(
        LoadShedding,
        path="/graphql",
        limit=settings.max_inflight_operations,
        on_shed=runtime.metrics.shed.inc,
    )
    # Brotli when the client accepts it, else gzip; both only above the minimum size.
    compression = Middleware(
        BrotliMiddleware, minimum_size=settings.compression_min_size, quality=4, gzip_fallback=True
    )
    # Outermost first: CORS wraps shedding so a browser can read a shed 503 and its Retry-After.
    middleware = [shedding, compression]
    if settings.cors_origin_list:
        cors = Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=settings.cors_allow_header_list,
            expose_headers=["X-Request-ID", "ETag", "Retry-After"],
            max_age=settings.cors_max_age,
        )
        middleware.insert(0, cors)
    app = Starlette(
        routes=[
            Route("/graphql", endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint(runtime.metrics, runtime.refresh_gauges)),
            *graphiql_routes(),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
