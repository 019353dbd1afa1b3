"""The fake OMS behaves like the documented DRF service, so the other tests mean something."""

from __future__ import annotations

from gateway.fake_upstream.data import DOC_ITEM, make_items
from tests.conftest import AUTH

LIST = "/api/v1/oms/order_items/"


def test_drf_envelope_and_absolute_links(upstream, http):
    body = http.get(f"{upstream.url}{LIST}", params={"limit": 2, "page": 2}, headers=AUTH).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["next"] == f"{upstream.url}{LIST}?limit=2&page=3"
    assert body["previous"] == f"{upstream.url}{LIST}?limit=2"
    assert [i["id"] for i in body["results"]] == [3, 4]


def test_list_simple_names_state_order_and_product_by_id(upstream, http):
    body = http.get(f"{upstream.url}{LIST}list-simple/", params={"limit": 1}, headers=AUTH).json()
    item = body["results"][0]
    assert (item["state"], item["order"], item["product"]) == (1, 1, 1)
    assert item["price_list"] == DOC_ITEM["price_list"]


def test_detail_is_the_documented_item(upstream, http):
    assert http.get(f"{upstream.url}{LIST}1/", headers=AUTH).json() == DOC_ITEM


def test_auth_errors_use_drf_bodies(upstream, http):
    none = http.get(f"{upstream.url}{LIST}")
    wrong = http.get(f"{upstream.url}{LIST}", headers={"Authorization": "Token nope"})
    assert none.status_code == wrong.status_code == 401
    assert none.json() == {"detail": "Authentication credentials were not provided."}
    assert wrong.json() == {"detail": "Invalid token."}


def test_not_found_and_invalid_page(upstream, http):
    assert http.get(f"{upstream.url}{LIST}999999/", headers=AUTH).json() == {"detail": "Not found."}
    past = http.get(f"{upstream.url}{LIST}", params={"page": 1000}, headers=AUTH)
    assert past.status_code == 404 and past.json() == {"detail": "Invalid page."}


def test_limit_is_capped_like_a_drf_max_page_size(upstream, http):
    body = http.get(f"{upstream.url}{LIST}", params={"limit": 1000}, headers=AUTH).json()
    assert len(body["results"]) == upstream.fake.max_limit


def test_data_is_deterministic_and_shares_products():
    first, second = make_items(), make_items()
    assert first == second
    assert len({i["product"]["id"] for i in first}) < len(first) / 4
    assert any(i["parent_omnitron_id"] is not None for i in first)
    assert any(i["tax_amount"] is None for i in first)


def test_calls_are_counted_per_endpoint(upstream, http):
    http.get(f"{upstream.url}{LIST}2/", headers=AUTH)
    http.get(f"{upstream.url}{LIST}list-simple/", headers=AUTH)
    assert upstream.fake.stats()["calls"] == {"detail": 1, "list-simple": 1}
