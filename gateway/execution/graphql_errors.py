"""Turn every GraphQL error into what a client may see: one `extensions.code`, nothing internal."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from gateway.errors import INTERNAL_MESSAGE, ErrorCode, GatewayError, error_entry

logger = logging.getLogger("gateway.errors")

_NULL_IN_NON_NULL = "Cannot return null for non-nullable field"
_SERIALIZE = " cannot represent "


def client_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """The error as the client gets it; unexpected failures are logged here and masked."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    message = error.message
    if error.path and isinstance(original, GraphQLError) and _SERIALIZE in original.message:
        # A value that its scalar cannot represent (an Int past 32 bits) came from the upstream,
        # the only data source: its contract broke, not the client's document.
        message = f"The OMS API sent a value out of the field's range. ({original.message})"
        extensions = {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}
    elif original is None or isinstance(original, GraphQLError | GatewayError):
        extensions.setdefault("code", _code_without_cause(error))
    elif isinstance(original, TypeError) and str(original).startswith(_NULL_IN_NON_NULL):
        # The upstream is the only data source, so a null where the contract forbids one is a
        # mis-shaped upstream response, not a gateway bug.
        message = f"The OMS API sent no value for a required field. ({original})"
        extensions = {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}
    else:
        logger.error(
            "unexpected error in %s (request %s)",
            ".".join(map(str, error.path or ())) or "operation",
            request_id,
            exc_info=original,
        )
        message = INTERNAL_MESSAGE
        extensions = {"code": ErrorCode.INTERNAL_ERROR, "requestId": request_id}
    locations = [loc._asdict() for loc in error.locations] if error.locations else None
    return error_entry(message, extensions, locations, error.path)


def _code_without_cause(error: GraphQLError) -> ErrorCode:
    if isinstance(error, GraphQLSyntaxError):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.message.startswith(("Variable ", "Argument ")):
        # Validation errors carry their code already; these come from coercing runtime values
        # (e.g. a null variable given to a non-null `if:`), so they are the client's input.
        return ErrorCode.BAD_USER_INPUT
    return ErrorCode.GRAPHQL_VALIDATION_FAILED
