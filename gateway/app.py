"""The application factory: `create_app(settings)` returns the Starlette app."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway.graphiql import graphiql_response, graphiql_routes
from gateway.graphql_errors import client_error
from gateway.settings import Settings
from gateway.upstream import UpstreamSession, open_http_client
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import make_schema

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Runtime:
    """What lives as long as the app: the settings and the one pooled upstream client."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("the upstream client is opened by the app's lifespan")
        return self._http

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with open_http_client(self.settings) as client:
            self._http = client
            try:
                yield
            finally:
                self._http = None

    def authorization(self, request: Request | WebSocket) -> str | None:
        """The client's header as is; else the service token; else nothing (no call is made)."""
        header = request.headers.get("authorization")
        if header:
            return header
        token = self.settings.token
        if token:
            return token if token.lower().startswith("token ") else f"Token {token}"
        return None


def request_id_of(request: Request | WebSocket) -> str:
    supplied = request.headers.get("x-request-id", "")
    return supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex


class GatewayView(GraphQL[Context, None]):
    """Strawberry's ASGI view with a typed per-request context and the gateway's error policy."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(make_schema(), graphql_ide="graphiql", allow_queries_via_get=True)
        self.runtime = runtime

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        settings = self.runtime.settings
        session = UpstreamSession(self.runtime.http, self.runtime.authorization(request))
        request_id = request_id_of(request)
        request.state.request_id = request_id
        return Context(
            settings=settings,
            session=session,
            loaders=Loaders(session, detail_concurrency=settings.detail_concurrency),
            request_id=request_id,
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            request_id = getattr(request.state, "request_id", None) or request_id_of(request)
            response["errors"] = [client_error(e, request_id) for e in result.errors]
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_response(self.runtime.settings)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings) -> Starlette:
    runtime = Runtime(settings)
    view = GatewayView(runtime)
    app = Starlette(
        routes=[
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *graphiql_routes(),
        ],
        lifespan=runtime.lifespan,
    )
    app.state.runtime = runtime
    return app
