"""Issue 11's paging contract: adaptive page size, cursors bound to their query, last/before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import BASE, FakeOms, Faults, create_fake_app
from gateway.server.app import create_app
from gateway.settings import Settings
from resolvers.pagination import encode_cursor
from tests.conftest import AUTH, Gateway, Upstream, serve

PAGE = """query($o: String, $f: Int, $a: String, $l: Int, $b: String) {
  orderItems(orderNumber: $o, first: $f, after: $a, last: $l, before: $b) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id orderId price } }
  }
}"""


def page(gw: Gateway, **variables: Any) -> dict[str, Any]:
    conn: dict[str, Any] = gw.data(PAGE, variables)["orderItems"]
    return conn


def ids(conn: dict[str, Any]) -> list[int]:
    return [int(e["node"]["id"]) for e in conn["edges"]]


def error_of(gw: Gateway, **variables: Any) -> dict[str, Any]:
    body = gw.query(PAGE, variables)
    assert body["data"] == {"orderItems": None}
    [error] = body["errors"]
    return dict(error)


def rest_items(url: str, order_number: str | None = None) -> list[dict[str, Any]]:
    """The whole list as the REST API serves it, following its `next` links."""
    params = {"limit": "100", **({"order_number": order_number} if order_number else {})}
    next_url: str | None = str(httpx.URL(f"{url}{BASE}", params=params))
    items: list[dict[str, Any]] = []
    with httpx.Client(trust_env=False) as client:
        for _ in range(400):  # bounded: the fake holds 300 items
            if next_url is None:
                break
            body = client.get(next_url, headers=AUTH).json()
            items += body["results"]
            next_url = body["next"]
    return items


def number_of(order: int) -> str:
    return f"{2021000000 + order}"


# --- Cursors bound to their query. ---


def test_a_cursor_of_a_filtered_list_does_not_page_another(gateway, upstream):
    number = number_of(upstream.fake.items[1]["order"])
    cursor = page(gateway, o=number, f=1)["pageInfo"]["endCursor"]
    upstream.fake.reset()
    for other in (None, number_of(upstream.fake.items[40]["order"])):
        error = error_of(gateway, o=other, f=2, a=cursor)
        assert error["extensions"] == {"code": ErrorCode.BAD_USER_INPUT, "argument": "after"}
        assert "another query" in error["message"]
        error = error_of(gateway, o=other, l=2, b=cursor)
        assert error["extensions"]["argument"] == "before"
    assert upstream.calls() == 0
    assert (
        ids(page(gateway, o=number, f=2, a=cursor))
        == [i["id"] for i in upstream.fake.matching(number)][1:3]
    )


def test_an_unfiltered_cursor_does_not_page_a_filtered_list(gateway, upstream):
    cursor = page(gateway, f=3)["pageInfo"]["endCursor"]
    error = error_of(gateway, o="2021000002", f=3, a=cursor)
    assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT


def test_cursors_of_an_older_version_are_refused_by_name(gateway, upstream):
    error = error_of(gateway, f=2, a="b2k6MQ==")  # "oi:1", the 0.1 format
    assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    error = error_of(gateway, f=2, a=encode_cursor(1).replace("MT", "MD", 1))  # version 0
    assert "older version" in error["message"]
    assert upstream.calls() == 0


def test_cursors_are_short_opaque_and_stable_across_instances(make_gateway, upstream):
    number = number_of(upstream.fake.items[5]["order"])
    first = page(make_gateway(), o=number, f=2)["edges"]
    again = page(make_gateway(), o=number, f=2)["edges"]  # a "restarted" gateway
    assert first == again
    assert all(len(e["cursor"]) <= 24 and number not in e["cursor"] for e in first)


# --- last / before, with Relay's page info in both directions. ---


def test_last_alone_is_the_end_of_the_list(gateway, upstream):
    conn = page(gateway, l=5)
    assert ids(conn) == list(range(296, 301))
    assert conn["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": encode_cursor(295),
        "endCursor": encode_cursor(299),
    }
    assert upstream.calls() == 2  # the count, then one page


def test_last_of_a_short_list_is_one_call(gateway, upstream):
    number = number_of(upstream.fake.items[20]["order"])
    expected = [i["id"] for i in upstream.fake.matching(number)]
    assert 1 < len(expected) <= 10
    conn = page(gateway, o=number, l=10)
    assert ids(conn) == expected
    assert conn["pageInfo"]["hasPreviousPage"] is False and conn["pageInfo"]["hasNextPage"] is False
    assert upstream.calls() == 1  # the probe was the whole answer
    upstream.fake.reset()
    assert ids(page(gateway, o=number, l=1)) == expected[-1:]
    assert upstream.calls() == 2  # a longer list: the probe placed the window, one page served it


def test_a_backward_page_in_the_middle(gateway):
    conn = page(gateway, l=10, b=encode_cursor(50))
    assert ids(conn) == list(range(41, 51))
    info = conn["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is True
    assert (info["startCursor"], info["endCursor"]) == (encode_cursor(40), encode_cursor(49))


@pytest.mark.parametrize("size", [1, 7, 70, 300])
def test_walking_backward_from_the_end_sees_every_item_once(gateway, upstream, size):
    seen: list[int] = []
    before = None
    while True:
        conn = page(gateway, l=size, b=before)
        seen = ids(conn) + seen
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert seen == [i["id"] for i in upstream.fake.items]


def test_walking_a_filtered_list_backward(gateway, upstream):
    number = number_of(upstream.fake.items[30]["order"])
    expected = [i["id"] for i in upstream.fake.matching(number)]
    seen, before = [], None
    for _ in range(len(expected) + 1):
        conn = page(gateway, o=number, l=1, b=before)
        seen = ids(conn) + seen
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert seen == expected and len(expected) > 1


def test_pages_past_either_end(gateway):
    before_start = page(gateway, l=5, b=encode_cursor(0))
    assert before_start["edges"] == [] and before_start["totalCount"] == 300
    assert before_start["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": None,
        "endCursor": None,
    }
    past_end = page(gateway, f=5, a=encode_cursor(400))
    assert past_end["edges"] == []
    assert past_end["pageInfo"]["hasPreviousPage"] is True
    assert past_end["pageInfo"]["hasNextPage"] is False
    # With no cursor to go back from, `last` alone (before: null) is the way back.
    assert ids(page(gateway, l=5, b=past_end["pageInfo"]["startCursor"])) == list(range(296, 301))


def test_after_and_before_together_bound_the_window(gateway):
    assert ids(page(gateway, a=encode_cursor(2), b=encode_cursor(6))) == [4, 5, 6]
    assert ids(page(gateway, f=2, a=encode_cursor(2), b=encode_cursor(6))) == [4, 5]
    assert ids(page(gateway, l=2, a=encode_cursor(2), b=encode_cursor(6))) == [5, 6]
    assert ids(page(gateway, l=50, a=encode_cursor(297))) == [299, 300]


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"f": 2, "l": 2}, "last"),
        ({"l": -1}, "last"),
        ({"l": 501}, "last"),
        ({"b": "nope"}, "before"),
    ],
)
def test_bad_backward_arguments(gateway, upstream, variables, argument):
    error = error_of(gateway, **variables)
    assert error["extensions"]["argument"] == argument
    assert upstream.calls() == 0


def test_last_does_not_mix_with_page(gateway):
    body = gateway.query("{ orderItems(last: 3, page: 2) { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT


# --- Adaptive page size against an upstream that caps pages below upstream_max_limit. ---


@pytest.fixture(scope="module")
def capped() -> Iterator[Upstream]:
    """A second fake OMS whose real page cap (DRF's max_page_size) is 7."""
    fake = FakeOms(max_limit=7)
    with serve(create_fake_app(fake)) as url:
        yield Upstream(url, fake)


@pytest.fixture
def on_capped(capped: Upstream, http: httpx.Client) -> Iterator[Any]:
    with serve(create_app(Settings(upstream_url=capped.url))) as url:
        capped.fake.reset()
        yield Gateway(url, http)


def limits(upstream: Upstream) -> list[int]:
    return [int(q.split("limit=")[1].split("&")[0]) for q in upstream.fake.stats()["log"]]


def test_a_small_cap_is_learned_once_and_used_for_later_plans(on_capped, capped, caplog):
    with caplog.at_level("WARNING", logger="gateway.paging"):
        conn = on_capped.data("{ orderItems { nodes { id } } }")["orderItems"]
    [warning] = [r.getMessage() for r in caplog.records if r.name == "gateway.paging"]
    assert "at most 7 items" in warning and "OMS_UPSTREAM_MAX_LIMIT=7" in warning
    assert [int(n["id"]) for n in conn["nodes"]] == list(range(1, 21))
    assert limits(capped) == [20, 7, 7, 7]  # one short page teaches the cap
    capped.fake.reset()
    capped.fake.faults = Faults(latency=0.05)  # long enough for concurrent calls to overlap
    conn = on_capped.data("{ orderItems(first: 50) { nodes { id } } }")["orderItems"]
    assert [int(n["id"]) for n in conn["nodes"]] == list(range(1, 51))
    assert limits(capped) == [7] * 8
    assert capped.fake.stats()["max_in_flight"] >= 2  # still concurrent


def test_a_short_page_past_the_first_learns_the_cap_from_page_one(on_capped, capped):
    conn = page(on_capped, f=20, a=encode_cursor(19))
    assert ids(conn) == list(range(21, 41))
    log = capped.fake.stats()["log"]
    assert log[0].endswith("limit=20&page=2") and log[1].endswith("limit=20&page=1")


def test_the_cap_is_per_app_instance(on_capped, capped, http):
    on_capped.data("{ orderItems(first: 10) { nodes { id } } }")
    capped.fake.reset()
    with serve(create_app(Settings(upstream_url=capped.url))) as url:
        Gateway(url, http).data("{ orderItems(first: 10) { nodes { id } } }")
    assert limits(capped) == [10, 5, 5]  # the fresh app starts from the ceiling again


def test_upstream_max_limit_stays_a_ceiling(capped, http):
    with serve(create_app(Settings(upstream_url=capped.url, upstream_max_limit=5))) as url:
        capped.fake.reset()
        conn = page(Gateway(url, http), f=12)
    assert ids(conn) == list(range(1, 13))
    assert max(limits(capped)) <= 5


@pytest.mark.parametrize("size", [1, 5, 7, 8, 20, 50])
@pytest.mark.parametrize("filtered", [False, True])
def test_walking_the_capped_list_matches_the_rest_json(on_capped, capped, size, filtered):
    number = number_of(capped.fake.items[12]["order"]) if filtered else None
    expected = [
        {"id": str(i["id"]), "orderId": i["order"], "price": i["price"]}
        for i in rest_items(capped.url, number)
    ]
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(len(expected) + 1):
        conn = page(on_capped, o=number, f=size, a=after)
        seen += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == expected
    assert conn["totalCount"] == len(expected)


def test_last_on_a_capped_upstream(on_capped, capped):
    assert ids(page(on_capped, l=30)) == list(range(271, 301))


def test_learning_mid_operation_still_respects_the_budget(capped, http):
    settings = Settings(upstream_url=capped.url, max_upstream_calls=10)
    with serve(create_app(settings)) as url:
        gw = Gateway(url, http)
        capped.fake.reset()
        body = gw.query("{ n: orderItem(id: 3) { id } orderItems(first: 100) { nodes { id } } }")
        assert body["data"] == {"n": {"id": "3"}, "orderItems": None}
        assert body["errors"][0]["extensions"]["code"] == ErrorCode.COST_LIMIT
        assert capped.calls("list") + capped.calls("list-simple") == 1  # learned, not fetched
        # Once learned, the budget refuses the same field before any call.
        capped.fake.reset()
        body = gw.post("{ orderItems(first: 100) { nodes { id } } }").json()
        assert body["errors"][0]["extensions"] == {
            "code": ErrorCode.COST_LIMIT,
            "cost": 15,
            "budget": 10,
        }
        assert capped.calls() == 0


def test_calls_for_a_50_item_window_by_cap(http):
    """The figures of the issue's closing note: calls for 50 items against caps 7, 50, 100."""
    found: dict[int, tuple[int, int]] = {}
    for cap in (7, 50, 100):
        fake = FakeOms(max_limit=cap)
        with serve(create_fake_app(fake)) as up, serve(create_app(Settings(upstream_url=up))) as gw:
            gateway = Gateway(gw, http)
            query = "{ orderItems(first: 50) { nodes { id } } }"
            assert len(gateway.data(query)["orderItems"]["nodes"]) == 50
            learning = fake.stats()["total"]
            fake.reset()
            gateway.data(query)
            found[cap] = (learning, fake.stats()["total"])
    print(f"\n50-item window, calls (first operation, later ones) by cap: {found}")
    assert found == {7: (9, 8), 50: (1, 1), 100: (1, 1)}
