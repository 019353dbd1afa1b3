"""The HTTP surface: POST and GET /graphql, GraphiQL for browsers, /healthz."""

from __future__ import annotations

from gateway.errors import ErrorCode
from tests.conftest import AUTH


def test_post_json(gateway):
    assert gateway.data("{ orderItem(id: 1) { id } }") == {"orderItem": {"id": "1"}}


def test_get_query(gateway, http):
    response = http.get(
        f"{gateway.url}/graphql",
        params={
            "query": "query($id: ID!) { orderItem(id: $id) { price } }",
            "variables": '{"id": "1"}',
        },
        headers=AUTH,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"orderItem": {"price": "599.99"}}}


def test_browser_gets_graphiql_with_the_example(gateway, http):
    response = http.get(f"{gateway.url}/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "graphiql" in response.text.lower()
    assert "nested: orderItems(first: 5)" in response.text
    assert "Welcome to GraphiQL" not in response.text


def test_healthz(gateway, http):
    response = http.get(f"{gateway.url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_other_methods_are_not_allowed(gateway, http):
    response = http.put(f"{gateway.url}/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


def test_syntax_errors_have_a_code(gateway):
    response = gateway.post("{ orderItem(id: 1) { id }")
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.GRAPHQL_PARSE_FAILED


def test_validation_errors_have_a_code(gateway, upstream):
    body = gateway.post("{ orderItem(id: 1) { nope } }").json()
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.GRAPHQL_VALIDATION_FAILED
    assert upstream.calls() == 0


def test_variable_errors_have_a_code(gateway, upstream):
    body = gateway.post(
        "query($f: Int) { orderItems(first: $f) { totalCount } }", {"f": "ten"}
    ).json()
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert upstream.calls() == 0


def test_non_numeric_ids_never_reach_upstream(gateway, upstream):
    for query in ('{ orderItem(id: "abc") { id } }', '{ orderItemsByIds(ids: ["0", "x"]) { id } }',
                  '{ orderItem(id: "1/../2") { id } }', '{ orderItem(id: "-4") { id } }'):  # fmt: skip
        error = gateway.query(query)["errors"][0]
        assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT, query
    assert upstream.calls() == 0
