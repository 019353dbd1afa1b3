"""Partial results: nullable root fields, per-slot id errors and filter validation (issue 11)."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults

MIXED = '{ a: orderItem(id: 1) { id } b: orderItemsByIds(ids: [1, "abc", 2]) { id } }'


@pytest.mark.parametrize("compile_operations", [True, False])
def test_a_bad_id_fails_only_its_own_slot(make_gateway, upstream, compile_operations):
    gw = make_gateway(compile_operations=compile_operations)
    body = gw.query(MIXED)
    assert body["data"] == {"a": {"id": "1"}, "b": [{"id": "1"}, None, {"id": "2"}]}
    [error] = body["errors"]
    assert error["path"] == ["b", 1]
    assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert error["extensions"]["argument"] == "ids"
    assert "ids[1]" in error["message"]
    assert upstream.calls("detail") == 2  # 1 and 2, each once; "abc" never goes upstream


@pytest.mark.parametrize("compile_operations", [True, False])
def test_a_failing_list_leaves_its_siblings(make_gateway, upstream, compile_operations):
    gw = make_gateway(compile_operations=compile_operations, upstream_retries=0)
    upstream.fake.faults = Faults(kind="status", status=500, endpoints=frozenset({"list-simple"}))
    body = gw.query("{ one: orderItem(id: 3) { id } list: orderItems(first: 2) { nodes { id } } }")
    assert body["data"] == {"one": {"id": "3"}, "list": None}
    [error] = body["errors"]
    assert error["path"] == ["list"] and error["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR


@pytest.mark.parametrize("compile_operations", [True, False])
def test_a_bad_cursor_leaves_its_siblings(make_gateway, compile_operations):
    gw = make_gateway(compile_operations=compile_operations)
    body = gw.query(
        '{ one: orderItem(id: 3) { id } list: orderItems(after: "nope") { totalCount } }'
    )
    assert body["data"] == {"one": {"id": "3"}, "list": None}
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert body["errors"][0]["path"] == ["list"]


def test_too_many_ids_is_an_error_of_that_field_only(make_gateway):
    gw = make_gateway(max_ids=3)
    body = gw.query(
        "{ one: orderItem(id: 3) { id } many: orderItemsByIds(ids: [1, 2, 3, 4]) { id } }"
    )
    assert body["data"] == {"one": {"id": "3"}, "many": None}
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT


def test_bad_ids_do_not_hide_the_good_ones_from_the_budget(make_gateway, upstream):
    # Were a bad id to make the whole field count nothing, it would smuggle 5 calls past 4.
    gw = make_gateway(max_upstream_calls=4)
    body = gw.post('{ orderItemsByIds(ids: [1, 2, 3, 4, 5, "x"]) { id } }').json()
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.COST_LIMIT
    assert upstream.calls() == 0


FILTER = "query($o: String) { orderItems(orderNumber: $o, first: 3) { totalCount nodes { id } } }"


@pytest.mark.parametrize(
    "value", ["", " ", "\t\n", "2021\x00000002", "2021000002\r\nX-Injected: 1", "\x7f", "a\x85b"]
)
def test_empty_blank_or_control_filters_are_refused_before_any_call(gateway, upstream, value):
    body = gateway.query(FILTER, {"o": value})
    assert body["data"] == {"orderItems": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": ErrorCode.BAD_USER_INPUT, "argument": "orderNumber"}
    assert upstream.calls() == 0


def test_a_real_order_number_with_unicode_still_filters(gateway, upstream):
    body = gateway.query(FILTER, {"o": "SİPARİŞ-1"})
    assert body["data"]["orderItems"] == {"totalCount": 0, "nodes": []}
    assert upstream.calls() == 1
