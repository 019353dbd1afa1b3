"""The gateway's exception tree; each leaf carries the one `extensions.code` a client sees.

    GatewayError                      (code INTERNAL_ERROR; never raised itself)
    ├── ClientError                   what the client sent is wrong; no upstream call is made
    │   ├── BadUserInput              BAD_USER_INPUT
    │   ├── MissingCredentials        UNAUTHENTICATED (no Authorization header and no OMS_TOKEN)
    │   └── BadCredentials            UNAUTHENTICATED (empty, or not printable ASCII)
    └── UpstreamError                 the OMS API failed us
        ├── UpstreamTransportError    no HTTP answer
        │   ├── UpstreamTimeout       UPSTREAM_TIMEOUT
        │   └── UpstreamUnavailable   UPSTREAM_UNAVAILABLE (connection refused, DNS, reset)
        ├── UpstreamStatusError       an HTTP answer with a failing status
        │   ├── UpstreamUnauthorized  401 -> UNAUTHENTICATED
        │   ├── UpstreamForbidden     403 -> FORBIDDEN
        │   ├── UpstreamNotFound      404 -> a null field (detail) or an empty page (lists)
        │   └── UpstreamServerError   5xx and other 4xx -> UPSTREAM_ERROR
        └── UpstreamBadResponse       undecodable or mis-shaped body -> UPSTREAM_BAD_RESPONSE
            └── UpstreamPageCapped    a list page shorter than asked: the upstream caps pages
                                      lower than `upstream_max_limit` (the gateway adapts)
    CostLimitExceeded                 COST_LIMIT, when learning a page cap mid-operation would
                                      take a list past the call budget

graphql-core copies an exception's `extensions` onto the GraphQLError it builds, so raising one of
these from a resolver is all it takes. Anything else a resolver raises is masked as INTERNAL_ERROR.
Messages never include a token, a header or an upstream body.
"""

from __future__ import annotations

from typing import Any

from gateway.upstream.transports import TransportFailure, TransportTimeout

# Refusals answered before GraphQL runs (gateway/server.py, gateway/guards.py, shedding.py).
OVERLOADED = "OVERLOADED"  # 503: at capacity
HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"  # 431: the request head or Authorization is too big
REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # 408: the headers or the body came too slowly


class GatewayError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extra}


class ClientError(GatewayError):
    code = "BAD_USER_INPUT"


class BadUserInput(ClientError):
    code = "BAD_USER_INPUT"


class MissingCredentials(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__(
            "No credentials: send an 'Authorization: Token ...' header "
            "(or start the gateway with OMS_TOKEN)."
        )


class BadCredentials(ClientError):
    code = "UNAUTHENTICATED"

    def __init__(
        self, message: str = "The Authorization header is empty; send 'Authorization: Token ...'."
    ) -> None:
        super().__init__(message)


class UpstreamError(GatewayError):
    code = "UPSTREAM_ERROR"
    # Set by the upstream client for its log line: attempts made, and the HTTP status or the
    # transport exception's class name (or "deadline" / "circuit_open").
    attempts: int = 0
    cause: str | int = ""


class UpstreamTransportError(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamTimeout(UpstreamTransportError):
    code = "UPSTREAM_TIMEOUT"


class UpstreamUnavailable(UpstreamTransportError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamStatusError(UpstreamError):
    code = "UPSTREAM_ERROR"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, upstreamStatus=status)
        self.status = status


class UpstreamUnauthorized(UpstreamStatusError):
    code = "UNAUTHENTICATED"


class UpstreamForbidden(UpstreamStatusError):
    code = "FORBIDDEN"


class UpstreamNotFound(UpstreamStatusError):
    code = "NOT_FOUND"


class UpstreamServerError(UpstreamStatusError):
    code = "UPSTREAM_ERROR"


class UpstreamBadResponse(UpstreamError):
    code = "UPSTREAM_BAD_RESPONSE"


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
    code = "COST_LIMIT"


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
    """Map a transport failure (gateway/transports); the caller raises it `from exc`."""
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(f"The OMS API did not answer {endpoint} in time.")
    return UpstreamUnavailable(f"The OMS API could not be reached for {endpoint}.")


# Codes of a document over a limit (gateway/limits.py); `extensions.limit` and `.found` say more.
DEPTH_LIMIT = "DEPTH_LIMIT"
ALIAS_LIMIT = "ALIAS_LIMIT"
DIRECTIVE_LIMIT = "DIRECTIVE_LIMIT"
SELECTION_LIMIT = "SELECTION_LIMIT"
SELECTION_SET_LIMIT = "SELECTION_SET_LIMIT"
INTROSPECTION_LIMIT = "INTROSPECTION_LIMIT"
