"""Operation limits: each refused with its own code before any upstream call; fair use passes."""

from __future__ import annotations

import threading

import pytest
from graphql import get_introspection_query, parse

from gateway.errors import ErrorCode
from gateway.execution.limits import DocumentWalk, Limits, OverLimit
from gateway.settings import Settings
from tests.support import selection_nodes

DETAIL = "{ orderItem(id: 1) { id } }"


def refused(gateway, upstream, query, variables=None, status=400):
    """The errors of a request that must be refused without data and without an upstream call."""
    response = gateway.post(query, variables)
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body, body
    assert upstream.calls() == 0, upstream.fake.stats()["log"]
    return body["errors"]


def codes(errors):
    return [e["extensions"]["code"] for e in errors]


def nested(depth: int) -> str:
    """A document `depth` levels deep: `orderItem`, then (unknown) fields, then `id`."""
    inner = "id"
    for level in range(depth - 2):
        inner = f"f{level} {{ {inner} }}"
    return f"{{ orderItem(id: 1) {{ {inner} }} }}"


# --- depth -----------------------------------------------------------------------------------

DEPTH_4 = "{ orderItems(first: 1) { nodes { product { images { url } } } } }"  # depth 5


def test_depth_limit_default_is_ten(gateway, upstream):
    errors = refused(gateway, upstream, nested(12))
    [depth] = [e for e in errors if e["extensions"]["code"] == ErrorCode.DEPTH_LIMIT]
    # The walk stops at the first level past the limit.
    assert depth["extensions"] == {"code": ErrorCode.DEPTH_LIMIT, "limit": 10, "found": 11}


def test_depth_limit_refuses_a_valid_deep_query(make_gateway, upstream):
    gw = make_gateway(max_depth=4)
    errors = refused(gw, upstream, DEPTH_4)
    assert codes(errors) == [ErrorCode.DEPTH_LIMIT]
    assert errors[0]["extensions"]["found"] == 5


def test_depth_at_the_limit_passes(make_gateway, upstream):
    gw = make_gateway(max_depth=5)
    data = gw.data(DEPTH_4)
    assert data["orderItems"]["nodes"][0]["product"]["images"]
    assert upstream.calls() == 1


def test_depth_follows_fragments(make_gateway, upstream):
    gw = make_gateway(max_depth=4)
    query = (
        "{ orderItems(first: 1) { ...C } } "
        "fragment C on OrderItemConnection { nodes { ...P } } "
        "fragment P on OrderItem { product { ...I } } "
        "fragment I on Product { images { url } }"
    )
    assert codes(refused(gw, upstream, query)) == [ErrorCode.DEPTH_LIMIT]


def test_inline_fragments_add_no_depth(make_gateway, upstream):
    gw = make_gateway(max_depth=2)
    query = "{ orderItem(id: 1) { ... on OrderItem { ... on OrderItem { ... { id } } } } }"
    assert gw.data(query) == {"orderItem": {"id": "1"}}


def test_graphiql_introspection_passes_the_depth_limit(gateway, upstream):
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    data = gateway.data(query)
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"OrderItem", "OrderItemConnection", "Query"} <= names
    assert upstream.calls() == 0


def test_deep_introspection_is_still_bounded(gateway, upstream):
    query = (
        '{ __type(name: "__Type") { fields { type { ofType { fields { type { ofType { fields '
        "{ type { ofType { fields { name } } } } } } } } } } } }"
    )
    errors = refused(gateway, upstream, query)
    assert codes(errors) == [ErrorCode.GRAPHQL_VALIDATION_FAILED]
    assert "introspection depth" in errors[0]["message"]


# --- aliases ---------------------------------------------------------------------------------


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: orderItem(id: 1) {{ id }}" for i in range(count)) + " }"


def test_alias_limit(gateway, upstream):
    errors = refused(gateway, upstream, aliased(31))
    assert codes(errors) == [ErrorCode.ALIAS_LIMIT]
    assert errors[0]["extensions"] == {"code": ErrorCode.ALIAS_LIMIT, "limit": 30, "found": 31}


def test_thirty_aliases_pass_with_one_call(gateway, upstream):
    data = gateway.data(aliased(30))
    assert len(data) == 30 and data["a29"] == {"id": "1"}
    assert upstream.calls() == 1


def test_aliases_in_a_fragment_count_at_every_spread(gateway, upstream):
    # 8 aliases written once, spread under 4 aliased fields: 4 + 4 * 8 = 36 > 30.
    fields = " ".join(f"x{i}: id" for i in range(8))
    query = (
        "{ " + " ".join(f"o{i}: orderItem(id: 1) {{ ...F }}" for i in range(4)) + " } "
        f"fragment F on OrderItem {{ {fields} }}"
    )
    errors = refused(gateway, upstream, query)
    assert codes(errors) == [ErrorCode.ALIAS_LIMIT]
    assert errors[0]["extensions"]["found"] == 36


# --- tokens ----------------------------------------------------------------------------------


def test_token_bomb(gateway, upstream):
    errors = refused(gateway, upstream, "{ orderItem(id: 1) { " + "id " * 5000 + "} }")
    assert codes(errors) == [ErrorCode.TOKEN_LIMIT]
    assert errors[0]["extensions"]["limit"] == 2000


def test_token_limit_is_exact(gateway, upstream):
    # 10 tokens of frame plus n fields: 2000 tokens parse, 2001 do not.
    over = refused(gateway, upstream, "{ orderItem(id: 1) { " + "id " * 1991 + "} }")
    assert codes(over) == [ErrorCode.TOKEN_LIMIT]
    at = gateway.post("{ orderItem(id: 1) { " + "id " * 1990 + "} }").json()
    assert ErrorCode.TOKEN_LIMIT not in codes(at.get("errors", []))


def test_token_limit_is_a_setting(make_gateway, upstream):
    gw = make_gateway(max_tokens=20)
    query = "{ orderItem(id: 1) { " + "id " * 11 + "} }"  # 21 tokens
    assert codes(refused(gw, upstream, query)) == [ErrorCode.TOKEN_LIMIT]
    assert gw.data(DETAIL) == {"orderItem": {"id": "1"}}


# --- directives ------------------------------------------------------------------------------


def test_directive_limit(gateway, upstream):
    query = "{ orderItem(id: 1) { " + "id @include(if: true) " * 51 + "} }"
    errors = refused(gateway, upstream, query)
    assert ErrorCode.DIRECTIVE_LIMIT in codes(errors)
    [error] = [e for e in errors if e["extensions"]["code"] == ErrorCode.DIRECTIVE_LIMIT]
    assert error["extensions"]["found"] == 51 and error["extensions"]["limit"] == 50


def test_directives_in_a_fragment_count_at_every_spread(make_gateway, upstream):
    gw = make_gateway(max_directives=5)
    query = (
        "{ a: orderItem(id: 1) { ...F } b: orderItem(id: 1) { ...F } } "
        "fragment F on OrderItem { id @include(if: true) price @skip(if: false) "
        "orderId @include(if: true) }"
    )
    errors = refused(gw, upstream, query)
    assert codes(errors) == [ErrorCode.DIRECTIVE_LIMIT]
    assert errors[0]["extensions"]["found"] == 6


def test_directives_within_the_limit_pass(make_gateway, upstream):
    gw = make_gateway(max_directives=5)
    query = "{ orderItem(id: 1) @include(if: true) { id @skip(if: false) price @skip(if: true) } }"
    assert gw.data(query) == {"orderItem": {"id": "1"}}


# --- fragment bombs --------------------------------------------------------------------------


def fragment_bomb(levels: int, fanout: int, on: str, leaf: str, root: str) -> str:
    """Fragment i spreads fragment i+1 `fanout` times: fanout**levels fields from ~600 bytes."""
    fragments = []
    for level in range(levels):
        body = f"...F{level + 1} " * fanout if level < levels - 1 else leaf
        fragments.append(f"fragment F{level} on {on} {{ {body} }}")
    return root + " " + " ".join(fragments)


BOMBS = {
    "in an item": fragment_bomb(9, 6, "OrderItem", "id", "{ orderItem(id: 1) { ...F0 } }"),
    "at the root": fragment_bomb(9, 6, "Query", "orderItem(id: 1) { id }", "{ ...F0 }"),
    "in a connection": fragment_bomb(
        9, 6, "OrderItemConnection", "nodes { id }", "{ orderItems(first: 2) { ...F0 } }"
    ),
}


@pytest.mark.parametrize("where", list(BOMBS))
def test_fragment_bomb_is_refused_at_once(gateway, upstream, where):
    # Expanded, each of these is 1.7 million fields; measured naively (and then walked by the
    # call budget and the endpoint planner) it held the event loop for 6 to 18 seconds. The
    # work is counted instead: the walk reads each written selection at most twice.
    query = BOMBS[where]
    assert len(query) < 800
    errors = refused(gateway, upstream, query)
    assert codes(errors) == [ErrorCode.SELECTION_LIMIT]
    assert errors[0]["extensions"]["found"] > 10_000  # the walk stops once past the limit
    document = parse(query)
    walk = DocumentWalk(document, Limits.of(Settings()))
    with pytest.raises(OverLimit):
        walk.operation(document.definitions[0])
    assert walk.visited <= 2 * selection_nodes(document)  # about a hundred, not 1.7 million


def test_selection_limit_is_a_setting(make_gateway, upstream):
    gw = make_gateway(max_selections=4)
    # orderItem, id, product, product.id: four selections once F is expanded
    query = "{ orderItem(id: 1) { ...F } } fragment F on OrderItem { id product { id } }"
    assert gw.data(query)["orderItem"]["product"]["id"]
    calls = upstream.calls()
    upstream.fake.reset()
    errors = refused(gw, upstream, query.replace("{ id } }", "{ id sku } }"))
    assert errors[0]["extensions"] == {"code": ErrorCode.SELECTION_LIMIT, "limit": 4, "found": 5}
    assert calls == 1


def test_the_gateway_stays_responsive_during_a_fragment_bomb(make_gateway, upstream):
    # Each bomb is refused after a walk of about a hundred nodes (counted above), so the loop is
    # never held; here the bombs and an ordinary query share the gateway and all are answered.
    gw = make_gateway()
    bomb = fragment_bomb(10, 6, "OrderItem", "id", "{ orderItem(id: 2) { ...F0 } }")
    answers = []
    thread = threading.Thread(
        target=lambda: [answers.append(gw.post(bomb + " " * i)) for i in range(5)]
    )
    thread.start()
    try:
        assert gw.data(DETAIL) == {"orderItem": {"id": "1"}}
    finally:
        thread.join(timeout=30)  # a hang guard
    assert not thread.is_alive()
    assert [codes(a.json()["errors"]) for a in answers] == [[ErrorCode.SELECTION_LIMIT]] * 5
    assert upstream.calls() == 1


def test_fragments_spread_repeatedly_within_the_limit_pass(gateway, upstream):
    query = fragment_bomb(3, 3, "OrderItem", "id price", "{ orderItem(id: 1) { ...F0 } }")
    assert gateway.data(query) == {"orderItem": {"id": "1", "price": "599.99"}}
    assert upstream.calls() == 1


# --- the upstream-call budget ----------------------------------------------------------------


def by_ids(ids) -> str:
    return "{ orderItemsByIds(ids: [" + ", ".join(map(str, ids)) + "]) { id } }"


def test_cost_limit_for_distinct_ids(make_gateway, upstream):
    # max_ids defaults to the budget, so raise it to let the budget be the limit that bites.
    gateway = make_gateway(max_ids=100)
    errors = refused(gateway, upstream, by_ids(range(1, 22)))
    assert codes(errors) == [ErrorCode.COST_LIMIT]
    assert errors[0]["extensions"] == {"code": ErrorCode.COST_LIMIT, "cost": 21, "budget": 20}


def test_twenty_distinct_ids_are_within_budget(gateway, upstream):
    data = gateway.data(by_ids(range(1, 21)))
    assert [i["id"] for i in data["orderItemsByIds"]] == [str(i) for i in range(1, 21)]
    assert upstream.calls("detail") == 20


def test_repeated_ids_cost_once(gateway, upstream):
    data = gateway.data(by_ids([3] * 10 + ['"03"', '" 3"'] * 5))
    assert data["orderItemsByIds"] == [{"id": "3"}] * 20
    assert upstream.calls() == 1


def test_cost_counts_ids_across_fields_and_variables(gateway, upstream):
    query = (
        "query($ids: [ID!]!) { orderItemsByIds(ids: $ids) { id } "
        + " ".join(f"a{i}: orderItem(id: {100 + i}) {{ id }}" for i in range(6))
        + " }"
    )
    errors = refused(gateway, upstream, query, {"ids": list(range(1, 16))})
    assert errors[0]["extensions"] == {"code": ErrorCode.COST_LIMIT, "cost": 21, "budget": 20}


def test_cost_limit_for_a_large_page(make_gateway, upstream):
    gw = make_gateway(upstream_max_limit=20)
    errors = refused(gw, upstream, "{ orderItems(first: 500) { nodes { id } } }")
    assert errors[0]["extensions"] == {"code": ErrorCode.COST_LIMIT, "cost": 25, "budget": 20}
    # the same through a variable
    query = "query($n: Int) { orderItems(first: $n) { nodes { id } } }"
    errors = refused(gw, upstream, query, {"n": 500})
    assert errors[0]["extensions"]["cost"] == 25


def test_a_page_within_budget_passes(make_gateway, upstream):
    gw = make_gateway(upstream_max_limit=20)
    data = gw.data("{ orderItems(first: 400) { nodes { id } } }")
    assert len(data["orderItems"]["nodes"]) == 300  # the fake holds 300 items
    # 20 pages of 20 are asked for at once, as the budget counted; 16-20 are past the end.
    assert upstream.calls() == 20


def test_cost_limit_is_a_setting(make_gateway, upstream):
    gw = make_gateway(max_upstream_calls=2)
    errors = refused(gw, upstream, by_ids([1, 2, 3]))
    assert errors[0]["extensions"] == {"code": ErrorCode.COST_LIMIT, "cost": 3, "budget": 2}


# --- orderItemsByIds cap ---------------------------------------------------------------------


def test_max_ids(gateway, upstream):
    # The default agrees with the budget (20 calls): max_ids ids can never be refused by it.
    body = gateway.query(by_ids([5] * 21))
    [error] = body["errors"]
    assert error["extensions"] == {"code": ErrorCode.BAD_USER_INPUT, "argument": "ids", "limit": 20}
    assert upstream.calls() == 0
    data = gateway.data(by_ids([5] * 20))
    assert len(data["orderItemsByIds"]) == 20
    assert upstream.calls() == 1


def test_max_ids_applies_before_the_budget_allows_many_calls(make_gateway, upstream):
    gw = make_gateway(max_upstream_calls=500, max_ids=10)
    body = gw.query(by_ids(range(1, 12)))
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert upstream.calls() == 0


# --- fair use --------------------------------------------------------------------------------


def test_the_readme_example_passes_every_limit(gateway, upstream):
    query = """
    query Example {
      nested: orderItems(first: 5) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes {
          id orderId price priceCurrency
          state { id enumValue name(locale: "tr-tr") }
          product { id name sku images { url } }
        }
      }
      slim: orderItems(first: 5) { nodes { id netAmount state { id } product { id } } }
      one: orderItem(id: 1) { price }
      some: orderItemsByIds(ids: [1, 7, 7, 999999]) { id }
    }
    """
    data = gateway.data(query)
    assert len(data["nested"]["nodes"]) == 5
    assert data["some"] == [{"id": "1"}, {"id": "7"}, {"id": "7"}, None]
