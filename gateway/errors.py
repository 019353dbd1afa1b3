"""The gateway's errors: every `extensions.code` (`ErrorCode`), the exception tree, one formatter.

    GatewayError                      (code INTERNAL_ERROR; never raised itself)
    ├── ClientError                   what the client sent is wrong; no upstream call is made
    │   ├── BadUserInput              BAD_USER_INPUT
    │   ├── MissingCredentials        UNAUTHENTICATED (no Authorization header and no OMS_TOKEN)
    │   └── BadCredentials            UNAUTHENTICATED (empty, or not printable ASCII)
    ├── UpstreamError                 the OMS API failed us
    │   ├── UpstreamTransportError    no HTTP answer
    │   │   ├── UpstreamTimeout       UPSTREAM_TIMEOUT
    │   │   └── UpstreamUnavailable   UPSTREAM_UNAVAILABLE (connection refused, DNS, reset)
    │   ├── UpstreamStatusError       an HTTP answer with a failing status
    │   │   ├── UpstreamUnauthorized  401 -> UNAUTHENTICATED
    │   │   ├── UpstreamForbidden     403 -> FORBIDDEN
    │   │   ├── UpstreamNotFound      404 -> a null field (detail) or an empty page (lists)
    │   │   └── UpstreamServerError   5xx and other 4xx -> UPSTREAM_ERROR
    │   └── UpstreamBadResponse       undecodable or mis-shaped body -> UPSTREAM_BAD_RESPONSE
    │       └── UpstreamPageCapped    a list page shorter than asked: the upstream caps pages
    │                                 lower than `upstream_max_limit` (the gateway adapts)
    ├── CostLimitExceeded             COST_LIMIT, when learning a page cap mid-operation would
    │                                 take a list past the call budget
    └── RequestError                  the request fails before execution: `errors` (each with
                                      its code), no `data`, an HTTP status. `request_error` makes
                                      one: BAD_REQUEST, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE,
                                      METHOD_NOT_ALLOWED, BATCHING_NOT_SUPPORTED, the
                                      PERSISTED_QUERY_* codes and COST_LIMIT (the budget);
                                      execution adds GRAPHQL_PARSE_FAILED,
                                      GRAPHQL_VALIDATION_FAILED, TOKEN_LIMIT, the document limits
                                      (DEPTH_LIMIT ...) and BAD_USER_INPUT (variables)
    TransportFailure                  no HTTP answer: raised by gateway/upstream/transports,
    ├── TransportTimeout              turned into UpstreamTimeout or UpstreamUnavailable by
    └── ConnectionFailed              `error_for_transport`

Answered with no exception, as a body from `error_body`: OVERLOADED (503), HEADERS_TOO_LARGE
(431) and REQUEST_TIMEOUT (408) before the app runs (gateway/server/protocol.py, guards.py,
shedding.py); NOT_FOUND, METHOD_NOT_ALLOWED and NOT_ACCEPTABLE (404, 405, 406) by the endpoint.

graphql-core copies an exception's `extensions` onto the GraphQLError it builds, so raising one of
these from a resolver is all it takes. Anything else a resolver raises is masked as INTERNAL_ERROR
with `INTERNAL_MESSAGE`. Messages never include a token, a header or an upstream body.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson
from graphql import GraphQLError


class ErrorCode(StrEnum):
    """Every `extensions.code` a client can get; the README's error table lists exactly these."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_BAD_RESPONSE = "UPSTREAM_BAD_RESPONSE"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    # A document over a limit (gateway/execution/limits.py); `extensions.limit` and `.found`.
    DEPTH_LIMIT = "DEPTH_LIMIT"
    ALIAS_LIMIT = "ALIAS_LIMIT"
    TOKEN_LIMIT = "TOKEN_LIMIT"
    DIRECTIVE_LIMIT = "DIRECTIVE_LIMIT"
    SELECTION_LIMIT = "SELECTION_LIMIT"
    SELECTION_SET_LIMIT = "SELECTION_SET_LIMIT"
    INTROSPECTION_LIMIT = "INTROSPECTION_LIMIT"
    COST_LIMIT = "COST_LIMIT"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    # Requests that are not acceptable GraphQL-over-HTTP requests (gateway/server/endpoint.py).
    BAD_REQUEST = "BAD_REQUEST"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    BATCHING_NOT_SUPPORTED = "BATCHING_NOT_SUPPORTED"
    # Refusals before the app runs (gateway/server/protocol.py, guards.py, shedding.py).
    OVERLOADED = "OVERLOADED"  # 503: at capacity
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"  # 431: the request head or Authorization is too big
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # 408: the headers or the body came too slowly


# The one message of a masked failure; `extensions.requestId` leads to the log line.
INTERNAL_MESSAGE = "Internal error. Quote the request id when reporting it."


def error_entry(
    message: str,
    extensions: Mapping[str, Any],
    locations: list[dict[str, int]] | None = None,
    path: list[str | int] | None = None,
) -> dict[str, Any]:
    """One entry of a response's `errors`, as every client sees it: the only place that shapes
    one (the GraphQL errors of gateway/execution/graphql_errors.py and every refusal)."""
    entry: dict[str, Any] = {"message": message}
    if locations:
        entry["locations"] = locations
    if path:
        entry["path"] = path
    entry["extensions"] = extensions
    return entry


def error_body(code: ErrorCode, message: str, **extensions: Any) -> bytes:
    """The JSON body of a request refused with one error and no `data`."""
    return orjson.dumps({"errors": [error_entry(message, {"code": code, **extensions})]})


class GatewayError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extra}


class ClientError(GatewayError):
    code = ErrorCode.BAD_USER_INPUT


class BadUserInput(ClientError):
    code = ErrorCode.BAD_USER_INPUT


class MissingCredentials(ClientError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self) -> None:
        super().__init__(
            "No credentials: send an 'Authorization: Token ...' header "
            "(or start the gateway with OMS_TOKEN)."
        )


class BadCredentials(ClientError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(
        self, message: str = "The Authorization header is empty; send 'Authorization: Token ...'."
    ) -> None:
        super().__init__(message)


class UpstreamError(GatewayError):
    code = ErrorCode.UPSTREAM_ERROR
    # Set by the upstream client for its log line: attempts made, and the HTTP status or the
    # transport exception's class name (or "deadline" / "circuit_open").
    attempts: int = 0
    cause: str | int = ""


class UpstreamTransportError(UpstreamError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class UpstreamTimeout(UpstreamTransportError):
    code = ErrorCode.UPSTREAM_TIMEOUT


class UpstreamUnavailable(UpstreamTransportError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class UpstreamStatusError(UpstreamError):
    code = ErrorCode.UPSTREAM_ERROR

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, upstreamStatus=status)
        self.status = status


class UpstreamUnauthorized(UpstreamStatusError):
    code = ErrorCode.UNAUTHENTICATED


class UpstreamForbidden(UpstreamStatusError):
    code = ErrorCode.FORBIDDEN


class UpstreamNotFound(UpstreamStatusError):
    code = ErrorCode.NOT_FOUND


class UpstreamServerError(UpstreamStatusError):
    code = ErrorCode.UPSTREAM_ERROR


class UpstreamBadResponse(UpstreamError):
    code = ErrorCode.UPSTREAM_BAD_RESPONSE


class UpstreamPageCapped(UpstreamBadResponse):
    """A list page came back shorter than asked while more items exist: the server caps pages.

    Handled by the list fetcher, which learns the cap and re-plans; it reaches a client only
    when the upstream keeps contradicting itself.
    """

    def __init__(self, endpoint: str, *, limit: int, page: int, served: int) -> None:
        super().__init__(f"The OMS API sent {served} items for a page of {limit} from {endpoint}.")
        self.limit = limit
        self.page = page
        self.served = served


class CostLimitExceeded(GatewayError):
    code = ErrorCode.COST_LIMIT


class RequestError(GatewayError):
    """The request fails before execution: answered with `errors` and no `data`, at `status`."""

    def __init__(self, errors: list[GraphQLError], status: int = 400) -> None:
        super().__init__(errors[0].message, **(errors[0].extensions or {}))
        self.errors = errors
        self.status = status


def request_error(message: str, code: ErrorCode, status: int = 400, **extra: Any) -> RequestError:
    """A request refused with one error: its message, its code and any `extensions` to add."""
    return RequestError([GraphQLError(message, extensions={"code": code, **extra})], status)


class TransportFailure(Exception):
    """No HTTP answer came back. `retryable`: the upstream cannot have acted on the request
    (nothing was sent, or the connection died before an answer), so a GET may be repeated."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class TransportTimeout(TransportFailure):
    """Connecting or a read took longer than its timeout."""


class ConnectionFailed(TransportFailure):
    """Refused, reset, dropped, or not speaking HTTP."""


_STATUS_ERRORS: dict[int, tuple[type[UpstreamStatusError], str]] = {
    401: (UpstreamUnauthorized, "The OMS API rejected the credentials."),
    403: (UpstreamForbidden, "The OMS API refused access to this resource."),
    404: (UpstreamNotFound, "The OMS API has no such resource."),
}


def error_for_status(status: int, endpoint: str) -> UpstreamStatusError:
    """The exception for a failing upstream status; `endpoint` is a path template, never a URL."""
    cls, message = _STATUS_ERRORS.get(status, (UpstreamServerError, ""))
    if not message:
        message = f"The OMS API answered {status} for {endpoint}."
    return cls(message, status)


def error_for_transport(exc: TransportFailure, endpoint: str) -> UpstreamTransportError:
    """Map a transport failure (gateway/upstream/transports); the caller raises it `from exc`."""
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(f"The OMS API did not answer {endpoint} in time.")
    return UpstreamUnavailable(f"The OMS API could not be reached for {endpoint}.")
