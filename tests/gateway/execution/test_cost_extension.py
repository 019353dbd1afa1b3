"""Limits that agree and show: `extensions.cost` and the limits in the schema's descriptions."""

from __future__ import annotations

from graphql import build_schema

from gateway.errors import ErrorCode
from tests.conftest import AUTH
from tests.support import SDL


def test_cost_is_reported_on_every_response_when_asked(make_gateway, upstream):
    gw = make_gateway(expose_cost=True, max_upstream_calls=4)
    body = gw.query("{ orderItems(first: 3) { nodes { id } } a: orderItem(id: 9) { id } }")
    assert body["extensions"] == {"cost": {"upstreamCalls": 2, "estimated": 2, "budget": 4}}
    free = gw.query(
        "{ orderItems(first: 3) { nodes { id product { sku } } } a: orderItem(id: 2) { id } }"
    )
    assert free["extensions"]["cost"]["upstreamCalls"] == 1  # item 2 came with the full list
    refused = gw.post("{ orderItems(first: 500) { nodes { id } } }").json()
    assert refused["errors"][0]["extensions"]["code"] == ErrorCode.COST_LIMIT
    assert refused["extensions"] == {"cost": {"upstreamCalls": 0, "estimated": 5, "budget": 4}}
    invalid = gw.post("{ nope }").json()
    assert invalid["extensions"]["cost"] == {"upstreamCalls": 0, "estimated": 0, "budget": 4}
    assert upstream.calls() == 3


def test_cost_is_absent_by_default(gateway):
    assert "extensions" not in gateway.query("{ orderItem(id: 1) { id } }")


def test_a_cached_answer_reports_no_calls(make_gateway, upstream):
    gw = make_gateway(expose_cost=True, response_cache_ttl=60)
    params = {"query": "{ orderItem(id: 4) { id } }"}
    url = f"{gw.url}/graphql"
    headers = {"Authorization": "Token demo-token"}
    first = gw.client.get(url, params=params, headers=headers).json()
    again = gw.client.get(url, params=params, headers=headers).json()
    assert first["extensions"]["cost"]["upstreamCalls"] == 1
    assert again["extensions"]["cost"]["upstreamCalls"] == 0
    assert again["data"] == first["data"]


def test_every_limited_argument_states_its_limit():
    query = build_schema(SDL.read_text()).query_type.fields
    items = query["orderItems"]
    for argument in ("first", "last", "pageSize"):
        assert "at most 500" in items.args[argument].description, argument
    assert "at most 64 characters" in items.args["orderNumber"].description
    assert "budget of 20" in items.description and "at most 100 items" in items.description
    assert "at most 20" in query["orderItemsByIds"].args["ids"].description
    assert "positive integer" in query["orderItem"].args["id"].description


def test_descriptions_follow_the_settings(make_gateway):
    gw = make_gateway(max_page_size=42, max_ids=7, max_upstream_calls=9)
    introspection = '{ __type(name: "Query") { fields { name args { name description } } } }'
    fields = {
        f["name"]: {a["name"]: a["description"] for a in f["args"]}
        for f in gw.data(introspection)["__type"]["fields"]
    }
    assert "at most 42" in fields["orderItems"]["first"]
    ids = fields["orderItemsByIds"]["ids"]
    assert "at most 7" in ids and "budget of 9" in ids


def test_a_document_without_variables_is_budgeted_alike_on_every_request(make_gateway, upstream):
    """Such a document's figure and plan are kept per page cap after its first run: each later
    run reports the same estimate, and one over the budget is refused each time, before any
    call; an operation that does take variables beside it is budgeted by their values."""
    gw = make_gateway(expose_cost=True, max_upstream_calls=4)
    for _ in range(3):
        body = gw.query("{ orderItems(first: 3) { nodes { id } } a: orderItem(id: 9) { id } }")
        assert body["extensions"]["cost"] == {"upstreamCalls": 2, "estimated": 2, "budget": 4}
        refused = gw.post("{ orderItems(first: 500) { nodes { id } } }").json()
        assert refused["errors"][0]["extensions"]["code"] == ErrorCode.COST_LIMIT
        assert refused["extensions"]["cost"] == {"upstreamCalls": 0, "estimated": 5, "budget": 4}
    document = "query Q($n: Int) { orderItems(first: $n) { nodes { id } } } query R { a: orderItem(id: 1) { id } }"

    def estimated(name: str, variables: dict[str, int] | None = None) -> int:
        body = {"query": document, "operationName": name, "variables": variables}
        answer = gw.client.post(f"{gw.url}/graphql", json=body, headers=AUTH).json()
        figure: int = answer["extensions"]["cost"]["estimated"]
        return figure

    assert [estimated("R"), estimated("Q", {"n": 3}), estimated("R")] == [1, 1, 1]
    assert [estimated("Q", {"n": 500}), estimated("R"), estimated("Q", {"n": 500})] == [5, 1, 5]
    assert upstream.calls() == 3 * 2 + 4
