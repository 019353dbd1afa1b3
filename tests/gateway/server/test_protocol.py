"""GraphQL over HTTP gaps of issue 11: application/json statuses, OPTIONS and HEAD."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorCode
from tests.conftest import AUTH

JSON = {**AUTH, "Accept": "application/json"}
GQL = {**AUTH, "Accept": "application/graphql-response+json"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{ orderItem(id: 1) { id }"}, ErrorCode.GRAPHQL_PARSE_FAILED),
        ({"query": "{ orderItem(id: 1) { nope } }"}, ErrorCode.GRAPHQL_VALIDATION_FAILED),
        (
            {"query": "query($id: ID!) { orderItem(id: $id) { id } }", "variables": {}},
            ErrorCode.BAD_USER_INPUT,
        ),
    ],
)
def test_application_json_gets_200_for_well_formed_requests_that_fail(
    gateway, upstream, body, code
):
    url = f"{gateway.url}/graphql"
    legacy = gateway.client.post(url, json=body, headers=JSON)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")
    assert "data" not in legacy.json()
    assert legacy.json()["errors"][0]["extensions"]["code"] == code
    modern = gateway.client.post(url, json=body, headers=GQL)
    assert modern.status_code == 400  # unchanged for application/graphql-response+json
    assert upstream.calls() == 0


def test_application_json_keeps_400_for_malformed_requests(gateway):
    response = gateway.client.post(
        f"{gateway.url}/graphql",
        content=b'{"query": ',
        headers={**JSON, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.BAD_REQUEST


def test_options_says_what_the_endpoint_accepts(gateway, upstream):
    response = gateway.client.options(f"{gateway.url}/graphql")
    assert response.status_code == 204
    assert response.content == b""
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed == {"GET", "HEAD", "POST", "OPTIONS"}
    assert response.headers["x-request-id"]
    assert upstream.calls() == 0


def test_cors_preflight_is_answered_for_allowed_origins(make_gateway):
    gw = make_gateway(cors_origins="http://127.0.0.1:5173")
    response = gw.client.options(
        f"{gw.url}/graphql",
        headers={
            "Origin": "http://127.0.0.1:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://127.0.0.1:5173"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_head_is_get_without_a_body(gateway, upstream):
    params = {"query": "{ orderItem(id: 1) { id } }"}
    got = gateway.client.get(f"{gateway.url}/graphql", params=params, headers=AUTH)
    head = gateway.client.head(f"{gateway.url}/graphql", params=params, headers=AUTH)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["cache-control"] == got.headers["cache-control"]


def test_head_with_a_mutation_is_405_like_get(gateway, upstream):
    params = {"query": "mutation { x }"}
    response = gateway.client.head(f"{gateway.url}/graphql", params=params, headers=AUTH)
    assert response.status_code == 405
    assert upstream.calls() == 0
