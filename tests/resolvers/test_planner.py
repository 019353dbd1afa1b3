"""The planner picks list-simple or the full list from the whole selection, counted upstream."""

from __future__ import annotations

import pytest

from resolvers.roots import root_of
from schema import make_schema

SLIM = [
    "{ orderItems(first: 5) { nodes { id price state { id } product { id } orderId } } }",
    "{ orderItems(first: 5) { totalCount edges { cursor node { id priceList { name } } } } }",
    "{ orderItems(first: 5) { nodes { ...F } } } fragment F on OrderItem { id state { id } }",
    "{ orderItems(first: 5) { nodes { ... on OrderItem { product { id __typename } } } } }",
    "{ orderItems(first: 5) { nodes { s: state { i: id } p: product { id } } } }",
    "{ orderItems(first: 5) { nodes { id state @skip(if: true) { name } } } }",
    "{ orderItems(first: 5) { nodes { id product @include(if: false) { sku } } } }",
]

FULL = [
    "{ orderItems(first: 5) { nodes { id state { name } } } }",
    "{ orderItems(first: 5) { nodes { product { images { url } } } } }",
    "{ orderItems(first: 5) { edges { node { product { sku } } } } }",
    "{ orderItems(first: 5) { nodes { ...F } } } fragment F on OrderItem { state { enumValue } }",
    "{ orderItems(first: 5) { ...C } } fragment C on OrderItemConnection { nodes { ...I } }"
    " fragment I on OrderItem { ... on OrderItem { product { attributeValues { key } } } }",
    "{ orderItems(first: 5) { nodes { x: product { y: name } } } }",
]


@pytest.mark.parametrize("query", SLIM)
def test_slim_selections_use_list_simple(gateway, upstream, query):
    gateway.data(query)
    assert upstream.fake.stats()["calls"] == {"list-simple": 1}


@pytest.mark.parametrize("query", FULL)
def test_other_selections_use_the_full_list(gateway, upstream, query):
    gateway.data(query)
    assert upstream.fake.stats()["calls"] == {"list": 1}


@pytest.mark.parametrize(("skip", "endpoint"), [(True, "list-simple"), (False, "list")])
def test_skip_with_a_variable_decides_the_endpoint(gateway, upstream, skip, endpoint):
    query = (
        "query($s: Boolean!) { orderItems(first: 3) { nodes { id state @skip(if: $s) { name } } } }"
    )
    gateway.data(query, {"s": skip})
    assert upstream.fake.stats()["calls"] == {endpoint: 1}


def test_slim_list_answers_with_state_and_product_objects(gateway):
    nodes = gateway.data("{ orderItems(first: 2) { nodes { state { id } product { id } } } }")
    assert nodes["orderItems"]["nodes"] == [
        {"state": {"id": "1"}, "product": {"id": "1"}},
        {
            "state": {"id": nodes["orderItems"]["nodes"][1]["state"]["id"]},
            "product": {"id": nodes["orderItems"]["nodes"][1]["product"]["id"]},
        },
    ]


def test_single_item_uses_the_detail_endpoint(gateway, upstream):
    gateway.data("{ orderItem(id: 2) { id state { id } } }")
    assert upstream.fake.stats()["calls"] == {"detail": 1}


def test_count_only_selection_asks_for_one_slim_item(gateway, upstream):
    data = gateway.data("{ orderItems(first: 50) { totalCount pageInfo { hasNextPage } } }")
    assert data["orderItems"] == {"totalCount": 300, "pageInfo": {"hasNextPage": True}}
    assert upstream.fake.stats()["log"] == ["/api/v1/oms/order_items/list-simple/?limit=1&page=1"]


def test_every_root_field_declares_its_registry_entry():
    query_type = make_schema()._schema.query_type
    assert query_type is not None
    entries = {name: root_of(definition) for name, definition in query_type.fields.items()}
    assert {name: entry.name if entry else None for name, entry in entries.items()} == {
        "orderItem": "orderItem", "orderItems": "orderItems", "orderItemsByIds": "orderItemsByIds"
    }  # fmt: skip
    assert [name for name, entry in entries.items() if entry and entry.shaped] == ["orderItems"]
