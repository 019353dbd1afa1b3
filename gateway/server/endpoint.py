"""The /graphql endpoint per the GraphQL-over-HTTP specification, as a pure ASGI app."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import OperationType
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import INTERNAL_MESSAGE, ErrorCode, RequestError, error_body, request_error
from gateway.execution.executor import Executor
from gateway.execution.graphql_errors import client_error
from gateway.observability.logs import log_fields
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.server.apq import DocumentStore, persisted_hash, resolve_query
from gateway.server.persisted import TrustedDocuments
from gateway.server.request_id import request_id_of
from gateway.server.response_cache import ResponseCache, cache_key
from gateway.settings import Settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ALLOW = "GET, HEAD, POST, OPTIONS"
# Codes of requests that are not well-formed GraphQL-over-HTTP requests: these keep their 400.
_MALFORMED = frozenset({ErrorCode.BAD_REQUEST, ErrorCode.BATCHING_NOT_SUPPORTED})
# Answers the endpoint gives before any GraphQL: by their status.
_PLAIN_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
}
MAX_JSON_DEPTH = 32  # levels of lists and objects in `variables` and `extensions`

access_log = logging.getLogger("gateway.access")


# Header names clients commonly send, decoded once: a fixed table (client names never grow it).
_NAMES = {
    name.encode("latin-1"): name
    for name in (
        "host", "content-type", "content-length", "authorization", "accept", "accept-encoding",
        "accept-language", "user-agent", "connection", "x-request-id", "if-none-match",
        "origin", "referer", "cookie", "traceparent", "tracestate", "x-forwarded-for",
        "x-forwarded-proto", "cache-control", "pragma",
    )
}  # fmt: skip


class HttpRequest:
    """What the endpoint reads of one HTTP request: its method, its headers read once into a
    dict (names lower-case as ASGI gives them, the first value of a repeated name, as
    starlette's `Headers.get` answers), the query string and the body's messages. starlette's
    `Request` scans the header list on each of the half-dozen look-ups, most for absent names."""

    __slots__ = ("_query", "headers", "is_get", "method", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(_NAMES.get(name) or name.decode("latin-1"), value.decode("latin-1"))
        self.headers = headers
        # HEAD is GET without the body (RFC 9110): same status and headers, ETag included.
        self.is_get = self.method in ("GET", "HEAD")
        self._query: QueryParams | None = None

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope["query_string"])
        return self._query


@dataclass(slots=True)
class GraphQLRequest:
    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    document_id: str | None = None  # the persisted-documents draft's `documentId`


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


def _wants_html(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.query_params


def _json_object(value: Any, name: str) -> dict[str, Any] | None:
    if isinstance(value, str):  # GET parameters carry JSON text
        try:
            value = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            raise request_error(f"`{name}` is not valid JSON.", ErrorCode.BAD_REQUEST) from None
    if value is not None and not isinstance(value, dict):
        raise request_error(f"`{name}` must be an object.", ErrorCode.BAD_REQUEST)
    if value is not None and _deeper_than(value, MAX_JSON_DEPTH):
        # No argument of the schema nests this deep; deeper values only cost (coercion, the
        # response cache's key, orjson's own 254-level limit).
        raise request_error(
            f"`{name}` is nested deeper than {MAX_JSON_DEPTH} levels.",
            ErrorCode.BAD_USER_INPUT if name == "variables" else ErrorCode.BAD_REQUEST,
            limit=MAX_JSON_DEPTH,
        )
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """True when `value` nests more than `limit` lists or objects (iterative: no recursion)."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for v in level
            for child in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())
        ]
        if not level:
            return False
    return any(isinstance(v, dict | list) for v in level)


def _optional_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise request_error(f"`{name}` must be a string.", ErrorCode.BAD_REQUEST)
    return value


def parse_params(params: Any) -> GraphQLRequest:
    if len(params) == 1:  # the usual request: only a query (what the general path answers)
        query = params.get("query")
        if type(query) is str:
            return GraphQLRequest(query or None, None, None, None, None)
    # An absent parameter (most of them, most of the time) is None without a check's call.
    query, variables, name, extensions, document_id = map(params.get, _PARAMS)
    return GraphQLRequest(  # by position: a dataclass takes those for half the cost
        None if query is None else _optional_str(query, "query") or None,
        None if variables is None else _json_object(variables, "variables"),
        None if name is None else _optional_str(name, "operationName") or None,
        None if extensions is None else _json_object(extensions, "extensions"),
        None if document_id is None else _optional_str(document_id, "documentId") or None,
    )


_PARAMS = ("query", "variables", "operationName", "extensions", "documentId")


async def read_body(request: HttpRequest, message: Message, limit: int) -> bytes:
    """The rest of a body that `message`, the first one received, did not hold whole."""
    receive = request.receive
    chunks = bytearray()
    while True:
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        if message["type"] == "http.request":
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                raise _too_large(limit)
            if not message.get("more_body", False):
                return bytes(chunks)
        message = await receive()


def _too_large(limit: int) -> RequestError:
    return request_error(
        f"The request body exceeds {limit} bytes.", ErrorCode.PAYLOAD_TOO_LARGE, 413
    )


class OperationRecord:
    """What the access log and the metrics say about one request to /graphql. The defaults
    live on the class: a request sets only what it learns (a dataclass set all twelve)."""

    name: str | None = None  # the operation selected, once one is
    requested: str | None = None  # the `operationName` the client sent, for the log only
    selected: bool = False
    outcome: str = "ok"  # ok | partial | error | rejected
    codes: Sequence[str] = ()  # replaced, never changed in place
    upstream_calls: int = 0
    cache: str | None = None  # hit | miss when the response cache was consulted
    engine: str = "none"  # compiled | graphql-core, once an engine answered
    fallback: str | None = None  # why graphql-core answered, when compiling was possible
    trace_id: str | None = None  # the operation's span, when tracing is on
    span_id: str | None = None

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id


class GraphQLEndpoint:
    """GET and POST /graphql: negotiation, APQ, execution, status codes, ETags, caching."""

    def __init__(
        self,
        settings: Settings,
        executor: Executor,
        documents: DocumentStore,
        make_context: Callable[[HttpRequest, str], Any],
        graphiql: Callable[[], Response],
        *,
        metrics: Metrics,
        tracing: Tracing,
        responses: ResponseCache | None = None,
        trusted: TrustedDocuments | None = None,
    ) -> None:
        self.settings = settings
        self.executor = executor
        self.documents = documents
        self.make_context = make_context
        self.graphiql = graphiql
        self.metrics = metrics
        self.tracing = tracing
        self.responses = responses
        self.trusted = trusted or TrustedDocuments({}, only=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = HttpRequest(scope, receive)
        try:
            response = await self.handle(request)
        except Exception:
            # A gateway bug, never the client's or the upstream's doing: log it, mask it.
            request_id = request_id_of(request.headers)
            access_log.exception("unhandled error (request %s)", request_id)
            response = Response(
                error_body(ErrorCode.INTERNAL_ERROR, INTERNAL_MESSAGE, requestId=request_id),
                500,
                {"X-Request-ID": request_id},
                media_type=JSON,
            )
        if type(response) is _Answer:  # its two messages, without a call of its own
            start = {"type": "http.response.start", "status": response.status_code}
            start["headers"] = response.headers
            await send(start)
            await send({"type": "http.response.body", "body": response.body})
        else:
            await response(scope, receive, send)

    async def handle(self, request: HttpRequest) -> Response | _Answer:
        request_id = request_id_of(request.headers)
        method = request.method
        if method == "OPTIONS":
            # Not a CORS preflight (CORSMiddleware answers those when origins are configured):
            # say which methods the endpoint takes, with no body.
            return Response(status_code=204, headers={"Allow": ALLOW, "X-Request-ID": request_id})
        if method not in ("GET", "HEAD", "POST"):
            return self._plain(405, "Use GET or POST.", request_id, {"Allow": ALLOW})
        if request.is_get and _wants_html(request):
            if self.settings.production:
                return self._plain(404, "GraphiQL is off in production.", request_id)
            return self.graphiql()
        media_type = negotiate(request.headers.get("accept"))
        if media_type is None:
            return self._plain(406, f"Accept {GRAPHQL_RESPONSE} or {JSON}.", request_id)
        record = OperationRecord(request_id)
        started = time.perf_counter_ns()
        self.metrics.operation_started()
        try:
            if self.tracing.tracer is None:  # no span: not even an empty context to enter
                response = await self._answer(request, media_type, record)
            else:
                response = await self._traced(request, media_type, record)
        finally:
            self.metrics.operation_ended()
        self._observe(record, time.perf_counter_ns() - started, response.status_code)
        return response

    async def _traced(
        self, request: HttpRequest, media_type: str, record: OperationRecord
    ) -> _Answer:
        parent = self.tracing.extract(request.headers)
        with self.tracing.span("graphql.operation", "SERVER", parent=parent) as span:
            response = await self._answer(request, media_type, record)
            if span is not None:
                record.trace_id, record.span_id = self.tracing.ids(span)
                span.set_attribute("graphql.operation.name", record.name or "")
                if record.outcome != "ok":
                    self.tracing.fail(span, ",".join(record.codes) or record.outcome)
        return response

    async def _answer(
        self, request: HttpRequest, media_type: str, record: OperationRecord
    ) -> _Answer:
        try:
            params = await self._params(request)
            record.requested = params.operation_name
            status, content = await self._run(request, params, record)
        except RequestError as error:
            record.outcome = "rejected"
            errors = [client_error(e, record.request_id) for e in error.errors]
            record.codes = [e["extensions"]["code"] for e in errors]
            content = orjson.dumps({"errors": errors})
            estimated = max((e["extensions"].get("cost", 0) for e in errors), default=0)
            content = self._with_cost(content, estimated)
            status = error.status
            if status == 400 and media_type == JSON and not _MALFORMED.intersection(record.codes):
                # GraphQL over HTTP: with application/json, a well-formed request that fails at
                # parse, validation or variable coercion SHOULD get 200 (legacy clients read the
                # body, not the status); application/graphql-response+json keeps its 4xx.
                status = 200
        return self._respond(status, content, media_type, record.request_id, request)

    async def _params(self, request: HttpRequest) -> GraphQLRequest:
        if request.is_get:
            return parse_params(request.query_params)
        content_type = request.headers.get("content-type", "")
        if content_type != JSON:  # the usual header as is; anything else parsed
            content_type = content_type.split(";", 1)[0].strip().lower()
        if content_type != JSON:
            # Only JSON: a browser form (urlencoded, multipart, text/plain) can never send one.
            raise request_error(
                "Send the operation as application/json.", ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415
            )
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)  # before any message is read
        message = await request.receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")  # the whole body in one message: no copy
            if len(body) > limit:
                raise _too_large(limit)
        else:
            body = await read_body(request, message, limit)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise request_error("The body is not valid JSON.", ErrorCode.BAD_REQUEST) from None
        if isinstance(payload, list):
            raise request_error(
                "Batched operations are not supported.", ErrorCode.BATCHING_NOT_SUPPORTED
            )
        if not isinstance(payload, dict):
            raise request_error("The body must be a JSON object.", ErrorCode.BAD_REQUEST)
        return parse_params(payload)

    async def _run(
        self, request: HttpRequest, params: GraphQLRequest, record: OperationRecord
    ) -> tuple[int, bytes]:
        if (
            params.query is not None
            and params.extensions is None
            and params.document_id is None
            and not self.trusted.only
        ):
            # The usual request, a document in full and nothing else: what _document answers
            # for it, without its awaits and checks.
            query, digest, register = params.query, None, False
        else:
            query, digest, register = await self._document(params)
        context = self.make_context(request, record.request_id)
        # Without any credentials nothing is cached or compiled: the operation cannot fetch.
        credentials = bool(context.session.authorization)
        parsed = self.executor.parse(query, cache=credentials)
        if request.is_get and parsed.kind(params.operation_name) not in (
            None,
            OperationType.QUERY,
        ):
            # GraphQL over HTTP: 405 for a non-query over GET, before validation.
            raise request_error(
                "Only queries can be sent with GET; use POST.", ErrorCode.METHOD_NOT_ALLOWED, 405
            )
        prepared = self.executor.valid(parsed)
        if register and digest is not None and credentials:
            await self.documents.put(digest, query)
        operation = prepared.operation(params.operation_name)
        # Only an operation that is selected (and so executed) names the request's metrics.
        record.name = operation.name.value if operation.name else None
        record.selected = True
        key = None
        if self.responses is not None and (request.is_get or digest is not None):
            authorization = context.session.authorization
            if authorization:
                key = cache_key(authorization, query, params.variables, record.name)
                cached = await self.responses.get(key)
                record.cache = "hit" if cached is not None else "miss"
                self.metrics.hit("response", cached is not None)
                if cached is not None:
                    return 200, self._with_cost(cached, 0)
        started = time.perf_counter()
        try:
            result = await self.executor.execute(
                prepared, operation, params.variables, context, compile=credentials
            )
            record.engine, record.fallback = result.engine, result.fallback
        finally:
            session = context.session
            calls = record.upstream_calls = sum(session.calls.values())
            waited = session.upstream_wait
            elapsed = time.perf_counter() - started
            self.metrics.execution(elapsed - waited, waited if calls else None)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = [client_error(e, record.request_id) for e in result.errors]
            body["errors"] = errors
            record.codes = [e["extensions"]["code"] for e in errors]
            record.outcome = "partial" if result.data is not None else "error"
        content = orjson.dumps(body)
        if key is not None and not result.errors and self.responses is not None:
            await self.responses.put(key, content, self.settings.response_cache_ttl)
        if result.extensions:  # after caching: a cached answer's cost is not a later one's
            body["extensions"] = result.extensions
            content = orjson.dumps(body)
        return 200, content

    def _with_cost(self, content: bytes, estimated: int) -> bytes:
        """`content` with `extensions.cost` for an answer that made no upstream call."""
        if not self.settings.expose_cost:
            return content
        body = orjson.loads(content)
        body["extensions"] = {"cost": self.executor.cost_report({}, estimated)}
        return orjson.dumps(body)

    async def _document(self, params: GraphQLRequest) -> tuple[str, str | None, bool]:
        """The document to run, its hash when named by one, and whether APQ should register it.

        Trusted documents (the manifest) come first; with `persisted_only`, nothing else is
        parsed and APQ registers nothing.
        """
        query, trusted = params.query, self.trusted
        digest = persisted_hash(params.extensions)
        if params.document_id is not None:
            if query is not None:
                raise request_error(
                    "Send `documentId` or `query`, not both.", ErrorCode.BAD_REQUEST
                )
            digest, query = trusted.by_document_id(params.document_id)
            return query, digest, False
        listed = trusted.get(digest) if digest is not None else None
        if digest is not None and listed is not None:
            query = await resolve_query(self.documents, query, digest) if query else listed
            return query, digest, False
        if digest is not None and trusted.only:
            if query is None:
                raise request_error(
                    "No persisted document has this hash.", ErrorCode.PERSISTED_QUERY_NOT_FOUND
                )
            trusted.check_allowed(query)  # refuses: a listed hash was handled above
        if digest is not None:
            query = await resolve_query(self.documents, query, digest)
            self.metrics.hit("apq", params.query is None)
        if query is None:
            raise request_error("No `query` in the request.", ErrorCode.BAD_REQUEST)
        trusted.check_allowed(query)
        return query, digest, digest is not None and params.query is not None

    def _respond(
        self, status: int, content: bytes, media_type: str, request_id: str, request: HttpRequest
    ) -> _Answer:
        # The compression middleware adds `Accept-Encoding` to Vary when it compresses.
        headers = [(b"x-request-id", request_id.encode("latin-1")), _VARY]
        if status == 405:
            headers.append(_ALLOW_POST)
        if request.is_get and status == 200:
            etag = f'"{hashlib.blake2b(content, digest_size=16).hexdigest()}"'
            headers.append((b"etag", etag.encode("latin-1")))
            max_age = self.settings.get_cache_max_age
            cache_control = f"private, max-age={max_age}" if max_age else "private, no-store"
            headers.append((b"cache-control", cache_control.encode("latin-1")))
            if etag in _etags(request.headers.get("if-none-match")):
                return _Answer(304, b"", headers)
        else:
            headers.append(_NO_STORE)
        headers.append((b"content-length", str(len(content)).encode("latin-1")))
        headers.append(_CONTENT_TYPES[media_type])
        return _Answer(status, content, headers)

    def _plain(
        self, status: int, message: str, request_id: str, headers: dict[str, str] | None = None
    ) -> Response:
        code = _PLAIN_CODES[status]
        all_headers = {"X-Request-ID": request_id, **(headers or {})}
        return Response(error_body(code, message), status, all_headers, media_type=JSON)

    def _observe(self, record: OperationRecord, elapsed_ns: int, status: int) -> None:
        label = self.metrics.operation_label(record.name) if record.selected else "unselected"
        self.metrics.operation(label, record.outcome, record.engine, elapsed_ns / 1e9)
        if record.fallback is not None:
            self.metrics.fallbacks.labels(record.fallback).inc()
        self.metrics.count_errors(record.codes)
        log_fields(
            access_log,
            logging.INFO,
            "operation",
            {
                "request_id": record.request_id,
                "operation": record.name if record.selected else record.requested,
                # To the microsecond, in integers: round(ms, 3) is ~10 times the cost.
                "duration_ms": (elapsed_ns + 500) // 1000 / 1000,
                "upstream_calls": record.upstream_calls,
                "outcome": record.outcome,
                "codes": record.codes,
                "status": status,
                "cache": record.cache,
                "engine": record.engine,
                "fallback": record.fallback,
                "trace_id": record.trace_id,
                "span_id": record.span_id,
            },
        )


class _Answer:
    """A GraphQL answer as its two ASGI messages, with the headers starlette's `Response` would
    send (its names lower-cased, then content-length and content-type), built without it."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.headers}
        )
        await send({"type": "http.response.body", "body": self.body})


_VARY = (b"vary", b"Accept, Authorization")
_ALLOW_POST = (b"allow", b"POST")
_NO_STORE = (b"cache-control", b"no-store")
_CONTENT_TYPES = {
    media: (b"content-type", f"{media}; charset=utf-8".encode("latin-1"))
    for media in (GRAPHQL_RESPONSE, JSON)
}


def _etags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}
