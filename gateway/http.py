"""The /graphql endpoint per the GraphQL-over-HTTP specification, as a pure ASGI app."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.apq import DocumentStore, persisted_hash, resolve_query
from gateway.execution import Executor, RequestError, is_query, request_error
from gateway.graphql_errors import client_error
from gateway.settings import Settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(slots=True)
class GraphQLRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def request_id_of(headers: Any) -> str:
    supplied = headers.get("x-request-id", "")
    return supplied if _REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex


def negotiate(accept: str | None) -> str | None:
    """The response media type; None when the client accepts neither JSON type (406)."""
    if not accept:
        return JSON  # the specification's legacy default
    types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if GRAPHQL_RESPONSE in types:
        return GRAPHQL_RESPONSE
    if JSON in types or "*/*" in types or "application/*" in types:
        return JSON
    return None


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.query_params


def _json_object(value: Any, name: str) -> dict[str, Any] | None:
    if isinstance(value, str):  # GET parameters carry JSON text
        try:
            value = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            raise request_error(f"`{name}` is not valid JSON.", "BAD_REQUEST") from None
    if value is not None and not isinstance(value, dict):
        raise request_error(f"`{name}` must be an object.", "BAD_REQUEST")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise request_error(f"`{name}` must be a string.", "BAD_REQUEST")
    return value


def parse_params(params: Any) -> GraphQLRequest:
    return GraphQLRequest(
        query=_optional_str(params.get("query"), "query") or None,
        variables=_json_object(params.get("variables"), "variables"),
        operation_name=_optional_str(params.get("operationName"), "operationName") or None,
        extensions=_json_object(params.get("extensions"), "extensions"),
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise request_error(f"The request body exceeds {limit} bytes.", "PAYLOAD_TOO_LARGE", 413)
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise request_error(
                f"The request body exceeds {limit} bytes.", "PAYLOAD_TOO_LARGE", 413
            )
    return bytes(chunks)


class GraphQLEndpoint:
    """GET and POST /graphql: negotiation, APQ, execution, status codes, ETags."""

    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        documents: DocumentStore,
        make_context: Callable[[Request, str], Any],
        graphiql: Callable[[], Response],
    ) -> None:
        self.settings = settings
        self.executor = executor
        self.documents = documents
        self.make_context = make_context
        self.graphiql = graphiql

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        request_id = request_id_of(request.headers)
        method = request.method
        if method not in ("GET", "POST"):
            return self._plain(405, "Use GET or POST.", request_id, {"Allow": "GET, POST"})
        if method == "GET" and _wants_html(request):
            if self.settings.production:
                return self._plain(404, "GraphiQL is off in production.", request_id)
            return self.graphiql()
        media_type = negotiate(request.headers.get("accept"))
        if media_type is None:
            return self._plain(406, f"Accept {GRAPHQL_RESPONSE} or {JSON}.", request_id)
        try:
            params = await self._params(request)
            result = await self._run(request, params, request_id)
        except RequestError as error:
            failed = {"errors": [client_error(e, request_id) for e in error.errors]}
            return self._respond(error.status, failed, media_type, request_id, request)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [client_error(e, request_id) for e in result.errors]
        return self._respond(200, body, media_type, request_id, request)

    async def _params(self, request: Request) -> GraphQLRequest:
        if request.method == "GET":
            return parse_params(request.query_params)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != JSON:
            # Only JSON: a browser form (urlencoded, multipart, text/plain) can never send one.
            raise request_error(
                "Send the operation as application/json.", "UNSUPPORTED_MEDIA_TYPE", 415
            )
        body = await read_body(request, self.settings.max_body_bytes)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise request_error("The body is not valid JSON.", "BAD_REQUEST") from None
        if isinstance(payload, list):
            raise request_error("Batched operations are not supported.", "BATCHING_NOT_SUPPORTED")
        if not isinstance(payload, dict):
            raise request_error("The body must be a JSON object.", "BAD_REQUEST")
        return parse_params(payload)

    async def _run(
        self, request: Request, params: GraphQLRequest, request_id: str
    ) -> ExecutionResult:
        query = params.query
        digest = persisted_hash(params.extensions)
        if digest is not None:
            query = await resolve_query(self.documents, query, digest)
        if query is None:
            raise request_error("No `query` in the request.", "BAD_REQUEST")
        prepared = self.executor.prepare(query)
        operation = prepared.operation(params.operation_name)
        if request.method == "GET" and not is_query(operation):
            raise request_error(
                "Only queries can be sent with GET; use POST.", "METHOD_NOT_ALLOWED", 405
            )
        context = self.make_context(request, request_id)
        return await self.executor.execute(prepared, operation, params.variables, context)

    def _respond(
        self, status: int, body: dict[str, Any], media_type: str, request_id: str, request: Request
    ) -> Response:
        content = orjson.dumps(body)
        headers = {"X-Request-ID": request_id, "Vary": "Accept, Accept-Encoding, Authorization"}
        if status == 405:
            headers["Allow"] = "POST"
        if request.method == "GET" and status == 200:
            etag = f'"{hashlib.blake2b(content, digest_size=16).hexdigest()}"'
            headers["ETag"] = etag
            max_age = self.settings.get_cache_max_age
            headers["Cache-Control"] = (
                f"private, max-age={max_age}" if max_age else "private, no-store"
            )
            if etag in _etags(request.headers.get("if-none-match")):
                return Response(status_code=304, headers=headers)
        else:
            headers["Cache-Control"] = "no-store"
        return Response(content, status, headers, media_type=_with_charset(media_type))

    def _plain(
        self, status: int, message: str, request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE"}[status]
        error = client_error(GraphQLError(message, extensions={"code": code}), request_id)
        all_headers = {"X-Request-ID": request_id, **(headers or {})}
        return Response(orjson.dumps({"errors": [error]}), status, all_headers, media_type=JSON)


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


def _with_charset(media_type: str) -> str:
    return f"{media_type}; charset=utf-8"
