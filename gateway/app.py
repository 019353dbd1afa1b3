"""The application factory: `create_app(settings)` returns the Starlette app."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.apq import MemoryDocumentStore
from gateway.execution import Executor
from gateway.graphiql import graphiql_response, graphiql_routes
from gateway.http import GraphQLEndpoint
from gateway.settings import Settings
from gateway.shedding import LoadShedding
from gateway.upstream import OmsClient, UpstreamSession, open_http_client
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import make_schema


class Runtime:
    """What lives as long as the app: the settings and the one pooled upstream client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: OmsClient | None = None

    @property
    def client(self) -> OmsClient:
        if self._client is None:
            raise RuntimeError("the upstream client is opened by the app's lifespan")
        return self._client

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with open_http_client(self.settings) as http:
            self._client = OmsClient(http, self.settings)
            try:
                yield
            finally:
                self._client = None

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


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings) -> Starlette:
    runtime = Runtime(settings)
    schema = make_schema()
    endpoint = GraphQLEndpoint(
        settings,
        Executor(schema._schema, settings),
        MemoryDocumentStore(settings.apq_cache_size),
        runtime.context,
        lambda: graphiql_response(settings),
    )
    middleware = [
        Middleware(LoadShedding, path="/graphql", limit=settings.max_inflight_operations),
        Middleware(GZipMiddleware, minimum_size=settings.compression_min_size),
    ]
    if settings.cors_origin_list:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=["X-Request-ID", "ETag"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/healthz", healthz, methods=["GET"]),
            *graphiql_routes(),
        ],
        middleware=middleware,
        lifespan=runtime.lifespan,
    )
    app.state.runtime = runtime
    return app
