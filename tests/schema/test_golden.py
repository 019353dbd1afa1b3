"""The documentation's example item comes back field for field through every root field."""

from __future__ import annotations

from gateway.fake_upstream.data import DOC_ITEM
from tests.queries import ITEM_FIELDS, SLIM_FIELDS, expected_item, slim_expected


def test_doc_item_through_order_item(gateway, upstream):
    data = gateway.data("query { orderItem(id: 1) { ...ItemFields } }" + ITEM_FIELDS)
    assert data["orderItem"] == expected_item(DOC_ITEM)
    assert upstream.fake.stats()["calls"] == {"detail": 1}


def test_doc_item_through_order_items_full(gateway, upstream):
    data = gateway.data("query { orderItems(first: 1) { nodes { ...ItemFields } } }" + ITEM_FIELDS)
    assert data["orderItems"]["nodes"] == [expected_item(DOC_ITEM)]
    assert upstream.fake.stats()["calls"] == {"list": 1}


def test_doc_item_through_order_items_slim(gateway, upstream):
    data = gateway.data("query { orderItems(first: 1) { nodes { ...SlimFields } } }" + SLIM_FIELDS)
    assert data["orderItems"]["nodes"] == [slim_expected(DOC_ITEM)]
    assert upstream.fake.stats()["calls"] == {"list-simple": 1}


def test_doc_item_through_order_items_by_ids(gateway, upstream):
    data = gateway.data("query { orderItemsByIds(ids: [1]) { ...ItemFields } }" + ITEM_FIELDS)
    assert data["orderItemsByIds"] == [expected_item(DOC_ITEM)]


def test_money_is_exact_text_and_nulls_stay_null(gateway):
    item = gateway.data("{ orderItem(id: 1) { price retailPrice taxRate taxAmount } }")["orderItem"]
    assert item == {
        "price": "599.99",
        "retailPrice": "1000.00",
        "taxRate": "8.00",
        "taxAmount": None,
    }


def test_every_generated_item_round_trips(gateway, upstream):
    """All 300 seeded items (Turkish text, nulls, bundles) survive the full list unchanged."""
    body = gateway.data(
        "query { orderItems(first: 300) { totalCount nodes { ...ItemFields } } }" + ITEM_FIELDS
    )
    assert body["orderItems"]["totalCount"] == len(upstream.fake.items)
    assert body["orderItems"]["nodes"] == [expected_item(i) for i in upstream.fake.items]
