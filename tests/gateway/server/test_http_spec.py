"""GraphQL-over-HTTP: media types, status codes, methods, CORS, production mode and masking."""

from __future__ import annotations

import copy
import logging
import os
import re
import uuid

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import FakeOms, create_fake_app
from gateway.fake_upstream.data import DOC_ITEM
from gateway.server.request_id import fresh_id
from tests.conftest import AUTH, serve

GQL = "application/graphql-response+json"
QUERY = "{ orderItem(id: 1) { id } }"


def media_type(response):
    return response.headers["content-type"].split(";")[0].strip()


def post_raw(gateway, body: bytes, headers):
    return gateway.client.post(f"{gateway.url}/graphql", content=body, headers=headers)


# --- content negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GQL, GQL),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        (f"application/json;q=0.9, {GQL}", GQL),
        ("text/html, application/json;q=0.8", "application/json"),
    ],
)
def test_accept_picks_the_media_type(gateway, accept, expected):
    response = gateway.post(QUERY, headers={**AUTH, "Accept": accept})
    assert response.status_code == 200
    assert media_type(response) == expected
    assert response.json() == {"data": {"orderItem": {"id": "1"}}}


def test_no_accept_header_gets_json(gateway):
    request = gateway.client.build_request(
        "POST", f"{gateway.url}/graphql", json={"query": QUERY}, headers=AUTH
    )
    del request.headers["accept"]
    response = gateway.client.send(request)
    assert response.status_code == 200
    assert media_type(response) == "application/json"


@pytest.mark.parametrize("accept", ["text/csv", "text/html", "application/xml"])
def test_unacceptable_media_type_is_406(gateway, upstream, accept):
    response = gateway.post(QUERY, headers={**AUTH, "Accept": accept})
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.NOT_ACCEPTABLE
    assert upstream.calls() == 0


# --- methods ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(gateway, upstream, method):
    response = gateway.client.request(
        method, f"{gateway.url}/graphql", json={"query": QUERY}, headers=AUTH
    )
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed and method not in allowed
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.METHOD_NOT_ALLOWED
    assert upstream.calls() == 0


# --- status codes ----------------------------------------------------------------------------


def test_unparseable_json_is_400(gateway, upstream):
    response = post_raw(
        gateway, b'{"query": "{ orderItem', {**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.BAD_REQUEST
    assert upstream.calls() == 0


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ orderItem(id: 1) { id }", ErrorCode.GRAPHQL_PARSE_FAILED),
        ("query { ...", ErrorCode.GRAPHQL_PARSE_FAILED),
        ("{ orderItem(id: 1) { nope } }", ErrorCode.GRAPHQL_VALIDATION_FAILED),
        ("{ orderItem { id } }", ErrorCode.GRAPHQL_VALIDATION_FAILED),
        ("query($x: Int) { orderItem(id: $x) { id } }", ErrorCode.GRAPHQL_VALIDATION_FAILED),
    ],
)
def test_documents_that_fail_are_400_without_data(gateway, upstream, query, code):
    response = gateway.post(query, headers={**AUTH, "Accept": GQL})
    assert response.status_code == 400
    assert media_type(response) == GQL
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code
    assert upstream.calls() == 0


def test_data_present_means_200_even_with_errors(gateway):
    response = gateway.post(
        '{ orderItem(id: "abc") { id } again: orderItem(id: 1) { id } }',
        headers={**AUTH, "Accept": GQL},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"orderItem": None, "again": {"id": "1"}}
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT


def test_variable_coercion_failure_is_400(gateway, upstream):
    response = gateway.post(
        "query($id: ID!) { orderItem(id: $id) { id } }", {}, headers={**AUTH, "Accept": GQL}
    )
    assert response.status_code == 400
    body = response.json()
    assert (
        "data" not in body and body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    )


# --- CORS ------------------------------------------------------------------------------------

ORIGIN = "http://127.0.0.1:5173"


def preflight(gateway, origin):
    return gateway.client.options(
        f"{gateway.url}/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )


def test_no_cors_by_default(gateway):
    response = gateway.post(QUERY, headers={**AUTH, "Origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight(gateway, ORIGIN).headers


def test_cors_for_the_configured_origin_only(make_gateway):
    gw = make_gateway(cors_origins=ORIGIN)
    allowed = preflight(gw, ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    simple = gw.post(QUERY, headers={**AUTH, "Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()

    other = "http://evil.example"
    assert "access-control-allow-origin" not in preflight(gw, other).headers
    denied = gw.post(QUERY, headers={**AUTH, "Origin": other})
    assert "access-control-allow-origin" not in denied.headers


# --- production mode -------------------------------------------------------------------------

MISTAKES = {
    "field": "{ orderItem(id: 1) { pric } }",
    "nested field": "{ orderItem(id: 1) { state { nam } } }",
    "argument": "{ orderItems(frist: 1) { totalCount } }",
    "variable type": "query($i: Strin) { orderItem(id: $i) { id } }",
    "fragment type": "{ ...F } fragment F on Quer { __typename }",
    "wrong variable type": "query($i: String!) { orderItem(id: $i) { id } }",
    "root field": "{ orderItm(id: 1) { id } }",
    "variable value": "query($f: Int) { orderItems(first: $f) { totalCount } }",
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_production_errors_suggest_nothing(make_gateway, upstream, mistake):
    gw = make_gateway(env="production")
    variables = {"f": "ten", "i": "1"} if "$" in MISTAKES[mistake] else None
    response = gw.post(MISTAKES[mistake], variables)
    assert response.status_code == 400
    messages = [e["message"] for e in response.json()["errors"]]
    assert messages
    assert not any("Did you mean" in m for m in messages), messages
    assert upstream.calls() == 0


def test_development_errors_do_suggest(gateway):
    for mistake in ("field", "nested field", "argument", "variable type", "root field"):
        messages = [e["message"] for e in gateway.post(MISTAKES[mistake]).json()["errors"]]
        assert any("Did you mean" in m for m in messages), (mistake, messages)


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { types { name } } }",
        '{ __type(name: "OrderItem") { fields { name } } }',
        "{ orderItem(id: 1) { id } ... on Query { __schema { queryType { name } } } }",
        "{ ...I } fragment I on Query { __schema { types { name } } }",
    ],
)
def test_production_refuses_introspection(make_gateway, upstream, query):
    gw = make_gateway(env="production")
    response = gw.post(query)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.GRAPHQL_VALIDATION_FAILED
    assert upstream.calls() == 0


def test_introspection_works_in_development(gateway):
    names = {
        t["name"] for t in gateway.data("{ __schema { types { name } } }")["__schema"]["types"]
    }
    assert "OrderItem" in names


def test_production_still_answers_typename(make_gateway):
    assert make_gateway(env="production").data("{ __typename }") == {"__typename": "Query"}


def test_graphiql_is_not_served_in_production(make_gateway, http):
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    prod = http.get(f"{make_gateway(env='production').url}/graphql", headers=browser)
    assert prod.status_code == 404
    assert prod.headers["content-type"].startswith("application/json")
    assert "<html" not in prod.text.lower()
    dev = http.get(f"{make_gateway().url}/graphql", headers=browser)
    assert dev.status_code == 200 and "graphiql" in dev.text.lower()


# --- masking and request ids -----------------------------------------------------------------


@pytest.fixture
def mangled_gateway(make_gateway):
    """A gateway over a fake whose item 1 has a product image that is not an object."""
    item = copy.deepcopy(DOC_ITEM)
    item["product"]["productimage_set"] = ["not-an-object"]
    with serve(create_fake_app(FakeOms(items=[item]))) as url:
        yield make_gateway(upstream_url=url)


def test_unexpected_errors_are_masked_and_logged_with_the_request_id(mangled_gateway, caplog):
    caplog.set_level(logging.ERROR, logger="gateway")
    response = mangled_gateway.post("{ orderItem(id: 1) { id product { images { url } } } }")
    assert response.status_code == 200
    [error] = response.json()["errors"]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {"code": ErrorCode.INTERNAL_ERROR, "requestId": request_id}
    assert error["message"] == "Internal error. Quote the request id when reporting it."
    for leak in ("Traceback", "str", "attribute", "not-an-object", ".py", "127.0.0.1"):
        assert leak not in response.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the details stay in the log


def test_request_id_header_matches_the_error(mangled_gateway):
    response = mangled_gateway.post(
        "{ orderItem(id: 1) { product { images { url } } } }",
        headers={**AUTH, "X-Request-ID": "trace-42.a:b"},
    )
    assert response.headers["x-request-id"] == "trace-42.a:b"
    assert response.json()["errors"][0]["extensions"]["requestId"] == "trace-42.a:b"


@pytest.mark.parametrize("supplied", ["has space", "x" * 129, "semi;colon", "ünï"])
def test_unsafe_request_ids_are_replaced(gateway, supplied):
    response = gateway.client.post(
        f"{gateway.url}/graphql",
        json={"query": QUERY},
        headers={**AUTH, "X-Request-ID": supplied.encode()},
    )
    generated = response.headers["x-request-id"]
    assert generated != supplied and re.fullmatch(r"[0-9a-f]{32}", generated)


def test_fresh_request_ids_are_uuid4_hex():
    ids = {fresh_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


@pytest.mark.parametrize("raw", [bytes(16), b"\xff" * 16, bytes(range(16)), bytes(range(99, 115))])
def test_a_fresh_id_is_the_uuid4_of_the_same_random_bytes(raw, monkeypatch):
    monkeypatch.setattr(os, "urandom", lambda n: raw[:n])
    assert fresh_id() == uuid.UUID(bytes=raw, version=4).hex


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        ("POST", {"Accept": "text/csv"}, 406),
        ("PUT", {}, 405),
        ("POST", {"Content-Type": "text/plain"}, 415),
        ("POST", {}, 200),
    ],
)
def test_every_answer_carries_a_request_id(gateway, method, headers, status):
    content = b'{"query": "{ __typename }"}'
    response = gateway.client.request(
        method,
        f"{gateway.url}/graphql",
        content=content,
        headers={"Content-Type": "application/json", **AUTH, **headers},
    )
    assert response.status_code == status
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
