"""Pagination in both styles, upstream page planning, and the edges of the data."""

from __future__ import annotations

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.settings import Settings
from resolvers.pagination import PagePlan, Window, encode_cursor, plan_pages, resolve_window

IDS = "query($a: Int, $f: String, $p: Int, $s: Int) { orderItems(first: $a, after: $f, page: $p, pageSize: $s) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes { id } edges { cursor node { id } } } }"


def ids(conn):
    return [int(n["id"]) for n in conn["nodes"]]


def test_relay_pages_walk_the_whole_list_without_gaps(gateway, upstream):
    seen, after = [], None
    while True:
        conn = gateway.data(IDS, {"a": 70, "f": after})["orderItems"]
        assert [e["node"]["id"] for e in conn["edges"]] == [n["id"] for n in conn["nodes"]]
        seen += ids(conn)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        after = conn["pageInfo"]["endCursor"]
    assert seen == [i["id"] for i in upstream.fake.items]


def test_page_style_matches_relay_style(gateway):
    by_page = gateway.data(IDS, {"p": 3, "s": 25})["orderItems"]
    by_cursor = gateway.data(IDS, {"a": 25, "f": encode_cursor(49)})["orderItems"]
    assert ids(by_page) == ids(by_cursor) == list(range(51, 76))
    assert by_page["pageInfo"] == by_cursor["pageInfo"]
    assert by_page["pageInfo"]["hasPreviousPage"] is True


def test_last_page_is_short_and_has_no_next(gateway, upstream):
    conn = gateway.data(IDS, {"p": 4, "s": 80})["orderItems"]
    assert ids(conn) == list(range(241, 301))
    assert conn["pageInfo"]["hasNextPage"] is False
    assert conn["totalCount"] == 300


def test_past_the_end_is_empty_with_the_true_count(gateway, upstream):
    conn = gateway.data(IDS, {"p": 99, "s": 10})["orderItems"]
    assert conn["nodes"] == [] and conn["edges"] == []
    assert conn["totalCount"] == 300
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": None,
        "endCursor": None,
    }


def test_first_above_upstream_max_limit_fans_out_concurrently(make_gateway, upstream):
    gw = make_gateway(upstream_max_limit=100)
    upstream.fake.faults = Faults(latency=0.1)
    conn = gw.data(IDS, {"a": 250})["orderItems"]
    assert ids(conn) == list(range(1, 251))
    stats = upstream.fake.stats()
    assert stats["calls"] == {"list-simple": 3}
    assert stats["max_in_flight"] == 3
    assert all(int(q.split("limit=")[1].split("&")[0]) <= 100 for q in stats["log"])


def test_gateway_never_asks_upstream_for_more_than_its_max_limit(make_gateway, upstream):
    gw = make_gateway(upstream_max_limit=20)
    conn = gw.data(IDS, {"a": 45, "f": encode_cursor(6)})["orderItems"]
    assert ids(conn) == list(range(8, 53))
    log = upstream.fake.stats()["log"]
    assert log and all(int(q.split("limit=")[1].split("&")[0]) <= 20 for q in log)


def test_order_number_filter_is_forwarded(gateway, upstream):
    order = upstream.fake.items[10]["order"]
    number = f"{2021000000 + order}"
    conn = gateway.data(
        "query($o: String) { orderItems(orderNumber: $o, first: 50) { totalCount nodes { orderId } } }",
        {"o": number},
    )["orderItems"]
    expected = [i for i in upstream.fake.items if i["order"] == order]
    assert conn["totalCount"] == len(expected) and len(conn["nodes"]) == len(expected)
    assert {n["orderId"] for n in conn["nodes"]} == {order}
    assert f"order_number={number}" in upstream.fake.stats()["log"][0]


def test_first_zero_gives_the_count_only(gateway):
    conn = gateway.data(IDS, {"a": 0})["orderItems"]
    assert conn["nodes"] == [] and conn["totalCount"] == 300
    assert conn["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"a": 501}, "first"),
        ({"s": 10_000}, "pageSize"),
        ({"a": -1}, "first"),
        ({"s": 0}, "pageSize"),
        ({"p": 0}, "page"),
        ({"p": -3}, "page"),
        ({"f": "not-a-cursor"}, "after"),
        ({"f": encode_cursor(3), "p": 2}, "after"),
        ({"a": 10, "s": 20}, "first"),
    ],
)
def test_bad_pagination_arguments_are_rejected_before_any_call(
    gateway, upstream, variables, argument
):
    body = gateway.query(IDS, variables)
    assert body["data"] == {"orderItems": None}
    [error] = body["errors"]
    assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert error["extensions"]["argument"] == argument
    assert upstream.calls() == 0


def test_cap_error_names_the_limit(gateway):
    error = gateway.query(IDS, {"a": 501})["errors"][0]
    assert error["extensions"]["limit"] == 500
    assert "500" in error["message"]


SETTINGS = Settings()


@pytest.mark.parametrize(
    ("kwargs", "window"),
    [
        ({}, Window(0, 20)),
        ({"first": 5}, Window(0, 5)),
        ({"page": 3}, Window(40, 20)),
        ({"page": 2, "page_size": 7}, Window(7, 7)),
        ({"first": 7, "page": 2}, Window(7, 7)),
        ({"first": 3, "after": encode_cursor(9)}, Window(10, 3)),
        ({"page_size": 4, "after": encode_cursor(0)}, Window(1, 4)),
        ({"first": 6, "page_size": 6, "page": 2}, Window(6, 6)),
    ],
)
def test_every_argument_combination_has_one_window(kwargs, window):
    args = {"first": None, "after": None, "page": None, "page_size": None, **kwargs}
    assert resolve_window(SETTINGS, **args) == window


@pytest.mark.parametrize(
    ("window", "max_limit", "plan"),
    [
        (Window(0, 50), 100, PagePlan(50, (1,))),
        (Window(100, 50), 100, PagePlan(50, (3,))),
        (Window(10, 20), 100, PagePlan(30, (1,))),
        (Window(0, 250), 100, PagePlan(84, (1, 2, 3))),
        (Window(0, 0), 100, PagePlan(1, (1,))),
        (Window(95, 10), 100, PagePlan(15, (7,))),
    ],
)
def test_page_plans_use_fewest_calls_then_least_overfetch(window, max_limit, plan):
    got = plan_pages(window, max_limit)
    assert got == plan
    covered = range(got.first_offset, (got.pages[-1]) * got.limit)
    assert window.size == 0 or (
        window.offset in covered and window.offset + window.size - 1 in covered
    )
    assert got.limit <= max_limit
