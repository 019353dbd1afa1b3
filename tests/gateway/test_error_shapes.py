"""One formatter, one INTERNAL_ERROR message: the endpoint's last-resort 500 has the masked shape."""

from __future__ import annotations

import logging

import httpx
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from gateway.errors import INTERNAL_MESSAGE, ErrorCode, error_body
from gateway.execution.executor import Executor
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.server.apq import MemoryDocumentStore
from gateway.server.endpoint import GraphQLEndpoint
from gateway.settings import Settings
from schema import make_schema
from tests.conftest import serve


def broken_context(request: object, request_id: str) -> object:
    """A stand-in for a gateway bug: building the request's context fails."""
    raise RuntimeError("secret-detail-42")


def test_an_unhandled_failure_is_a_500_with_the_one_internal_message(caplog):
    settings = Settings()
    endpoint = GraphQLEndpoint(
        settings,
        Executor(make_schema(settings)._schema, settings),
        MemoryDocumentStore(8),
        broken_context,
        lambda: Response(),
        metrics=Metrics(),
        tracing=Tracing(enabled=False),
    )
    caplog.set_level(logging.ERROR, logger="gateway.access")
    app = Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
    with serve(app) as url:
        response = httpx.post(
            f"{url}/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "r-1"}
        )
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "message": INTERNAL_MESSAGE,
                "extensions": {"code": ErrorCode.INTERNAL_ERROR, "requestId": "r-1"},
            }
        ]
    }
    assert "secret-detail-42" not in response.text
    assert any("r-1" in r.getMessage() and r.exc_info for r in caplog.records)


def test_error_body_is_one_error_with_its_code_and_extensions():
    body = error_body(ErrorCode.COST_LIMIT, "Too many calls.", cost=9, budget=8)
    assert body == (
        b'{"errors":[{"message":"Too many calls.",'
        b'"extensions":{"code":"COST_LIMIT","cost":9,"budget":8}}]}'
    )
