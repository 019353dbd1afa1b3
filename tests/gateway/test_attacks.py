"""The attack table of issue 9: each crafted request, its refusal code and the work it cost.

Work is measured in what it costs, never in wall time: the selection nodes the document walk
visited (at most twice the nodes written, however far fragments expand), the bytes the caches
charge (from /metrics), the upstream calls the fake OMS received.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from graphql import get_introspection_query, parse

from gateway.errors import ErrorCode, UpstreamBadResponse
from gateway.execution.executor import Executor, Failure
from gateway.execution.limits import DocumentWalk, Limits, OverLimit
from gateway.fake_upstream.app import FakeOms, create_fake_app
from gateway.fake_upstream.data import make_items
from gateway.server.response_cache import MemoryResponseCache
from gateway.settings import Settings
from gateway.upstream.client import (
    _ANSWER_LEVELS,
    _COUNT_UPTO,
    _DUMPS_LEVELS,
    _LOADS_LEVELS,
    _PROBE_FREE,
    _WRAP_FROM,
    OmsClient,
    UpstreamSession,
)
from gateway.upstream.transports.httpx_transport import HttpxTransport
from schema import make_schema
from tests.conftest import AUTH, serve
from tests.support import selection_nodes

# --- documents -------------------------------------------------------------------------------


def doubling(levels: int, on: str = "Query", leaf: str = "__typename", root: str = "") -> str:
    """Fragment i spreads fragment i+1 twice: 2**levels leaves from a few hundred bytes."""
    fragments = [
        f"fragment F{i} on {on} {{ ...F{i + 1} ...F{i + 1} }}" if i < levels - 1 else
        f"fragment F{i} on {on} {{ {leaf} }}"
        for i in range(levels)
    ]  # fmt: skip
    return (root or "{ ...F0 }") + " " + " ".join(fragments)


def introspection_aliases(schemas: int, types: int, fields: int) -> str:
    return (
        "{ " + " ".join(f"s{i}: __schema {{ ...S }}" for i in range(schemas)) + " } "
        "fragment S on __Schema { " + " ".join(f"t{i}: types {{ ...T }}" for i in range(types))
        + " } fragment T on __Type { " + " ".join(f"f{i}: fields {{ name }}" for i in range(fields))
        + " }"
    )  # fmt: skip


def typename_aliases(roots: int, typenames: int) -> str:
    items = " ".join(f"t{i}: __typename" for i in range(typenames))
    lists = " ".join(f"r{i}: orderItems(first: 500) {{ nodes {{ ...T }} }}" for i in range(roots))
    return f"{{ {lists} }} fragment T on OrderItem {{ {items} }}"


def repeated(times: int, field: str = "orderItem(id: 1) { id }") -> str:
    return "{ " + f"{field} " * times + "}"


def same_name_tree(n: int) -> str:
    """n same-named fields at each of five levels: validation compares (n*n)**levels pairs."""

    def rep(inner: str) -> str:
        return " ".join([inner] * n)

    images = rep("images { url }")
    return "{ " + rep(
        "orderItems(first: 1) { " + rep("edges { " + rep("node { " + rep(
            "product { " + images + " }") + " }") + " }") + " }"
    ) + " }"  # fmt: skip


# (document, code): every one of them is under 13 KB and passed the old limits.
ATTACKS: dict[str, tuple[str, str]] = {
    "doubling chain, 20 levels over __typename": (doubling(20), ErrorCode.SELECTION_LIMIT),
    "doubling chain, 40 levels": (doubling(40), ErrorCode.SELECTION_LIMIT),
    "doubling chain in an item": (
        doubling(30, "OrderItem", "id", "{ orderItem(id: 1) { ...F0 } }"),
        ErrorCode.SELECTION_LIMIT,
    ),
    "doubling chain in a connection, inline fragments": (
        doubling(
            30,
            "OrderItemConnection",
            "... on OrderItemConnection { totalCount }",
            "{ orderItems(first: 1) { ...F0 } }",
        ),
        ErrorCode.SELECTION_LIMIT,
    ),
    "introspection under aliases, through fragments": (
        introspection_aliases(25, 60, 60),
        ErrorCode.ALIAS_LIMIT,
    ),
    "two __schema, each with many type aliases": (
        introspection_aliases(2, 40, 1),
        ErrorCode.ALIAS_LIMIT,
    ),
    "nested __type introspection": (
        '{ __type(name: "Query") { fields { type { fields { type { fields { type { '
        + "ofType { " * 9
        + "name"
        + " }" * 9
        + " } } } } } } } }",
        ErrorCode.INTROSPECTION_LIMIT,
    ),
    "three __schema": (
        "{ " + " ".join(f"s{i}: __schema {{ queryType {{ name }} }}" for i in range(3)) + " }",
        ErrorCode.INTROSPECTION_LIMIT,
    ),
    "__type spread by a fragment three times": (
        '{ ...A ...B ...C } fragment A on Query { a: __type(name: "Query") { name } } '
        'fragment B on Query { b: __type(name: "Query") { name } } '
        'fragment C on Query { c: __type(name: "Query") { name } }',
        ErrorCode.INTROSPECTION_LIMIT,
    ),
    "28 lists x 480 __typename aliases": (typename_aliases(28, 480), ErrorCode.SELECTION_SET_LIMIT),
    "2 lists x 40 __typename aliases": (typename_aliases(2, 40), ErrorCode.ALIAS_LIMIT),
    "40 __typename aliases at the root": (
        "{ " + " ".join(f"t{i}: __typename" for i in range(40)) + " }",
        ErrorCode.ALIAS_LIMIT,
    ),
    "one field 490 times": (repeated(490, "__typename"), ErrorCode.SELECTION_SET_LIMIT),
    "one list 280 times": (
        repeated(280, "orderItems { totalCount }"),
        ErrorCode.SELECTION_SET_LIMIT,
    ),
    "one field 60 times (under the selection-set cap)": (
        repeated(60),
        ErrorCode.SELECTION_SET_LIMIT,
    ),
    "one list 60 times": (
        repeated(60, "orderItems(first: 5) { totalCount }"),
        ErrorCode.SELECTION_SET_LIMIT,
    ),
    "same-named fields, three at each of five levels": (
        same_name_tree(3),
        ErrorCode.SELECTION_SET_LIMIT,
    ),
    "same-named fields in fragments spread by inline fragments": (
        "{ " + "... on Query { ...R } " * 40 + "} fragment R on Query { orderItem(id: 1) { id } }",
        ErrorCode.SELECTION_SET_LIMIT,
    ),
}


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_before_validation_and_any_call(gateway, upstream, name):
    query, code = ATTACKS[name]
    assert len(query.encode()) < 13_000
    response = gateway.post(query)
    assert response.status_code == 400, response.text
    assert codes(response.json()) == [code]
    assert upstream.calls() == 0


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_walk_visits_each_written_selection_at_most_twice(name):
    document = parse(ATTACKS[name][0])
    written = selection_nodes(document)
    walk = DocumentWalk(document, Limits.of(Settings()))
    with pytest.raises(OverLimit):
        for definition in document.definitions:
            if definition.kind == "operation_definition":
                walk.operation(definition)  # type: ignore[arg-type]
    assert walk.visited <= 2 * written


def test_graphiql_introspection_passes_every_limit(gateway, upstream):
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    assert gateway.data(query)["__schema"]["queryType"]["name"] == "Query"


def test_the_worst_admitted_answer_is_bounded(gateway, upstream):
    # 30 aliases in all, the page at its 500-item limit, one list-simple page of 100 per call.
    items = " ".join(f"t{i}: __typename" for i in range(29))
    body = gateway.query("{ r: orderItems(first: 500) { nodes { " + items + " id } } }")
    assert len(body["data"]["r"]["nodes"]) == 300
    assert upstream.calls() == 5  # pages of 100: the fake has 300 items, pages 4 and 5 are 404


def test_validation_comparisons_are_bounded_but_fair_use_passes(gateway, upstream):
    # Same-named fields with different selections are normal: `nodes` twice, with fragments.
    query = (
        "{ orderItems(first: 2) { nodes { id } nodes { price } ...N ...N } } "
        "fragment N on OrderItemConnection { nodes { state { id } } }"
    )
    nodes = gateway.data(query)["orderItems"]["nodes"]
    assert set(nodes[0]) == {"id", "price", "state"}


# --- caches ----------------------------------------------------------------------------------


def cache_bytes(gw: Any, cache: str) -> float:
    text = gw.client.get(f"{gw.url}/metrics").text
    return metric(text, "oms_gateway_cache_bytes", f'cache="{cache}"')


def test_nothing_is_cached_for_a_request_without_credentials(make_gateway, upstream):
    gw = make_gateway()
    for i in range(20):
        body = gw.query(typename_aliases(1, 20) + f" # {i}", headers={})
        assert codes(body) == [ErrorCode.UNAUTHENTICATED]
    query = "{ orderItem(id: 1) { id } }"
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    gw.client.post(f"{gw.url}/graphql", json={"query": query, "extensions": extensions})
    assert cache_bytes(gw, "document") == cache_bytes(gw, "apq") == 0
    gw.data(query)
    assert cache_bytes(gw, "document") > 0


def test_the_document_cache_is_bounded_by_bytes(make_gateway, upstream):
    gw = make_gateway(document_cache_bytes=200_000)
    query = typename_aliases(1, 20)  # about 400 bytes: some 80 KB charged with its variant
    for i in range(60):
        gw.data(query + f" # {i:02}")
    kept = cache_bytes(gw, "document")
    assert 100_000 < kept <= 200_000


def test_compiled_variants_are_charged_to_their_document(make_gateway, upstream):
    # Each locale compiles its own variant of the same document (32 at most are kept).
    gw = make_gateway(document_cache_bytes=400_000)
    query = "query($l: String) { orderItems(first: 2) { nodes { state { name(locale: $l) } } } }"
    gw.data(query, {"l": "tr"})
    one = cache_bytes(gw, "document")
    for i in range(32):
        gw.data(query, {"l": f"x{i}"})
    grown = cache_bytes(gw, "document")
    assert one + 12 * 1024 <= grown <= 400_000  # new variants are charged, within the bound


def test_a_failing_document_keeps_only_its_errors(make_gateway, upstream):
    gw = make_gateway()
    bad = "{ orderItem(id: 1) { nope } }" + " " * 5000
    for _ in range(2):
        assert gw.post(bad).status_code == 400
    once = cache_bytes(gw, "document")
    for _ in range(100):
        assert codes(gw.post(bad).json()) == [ErrorCode.GRAPHQL_VALIDATION_FAILED]
    assert cache_bytes(gw, "document") == once < 6000  # the text and the message, no AST


def test_a_cached_failure_is_raised_fresh_every_time():
    executor = Executor(make_schema()._schema, Settings())
    errors = []
    for _ in range(3):
        failure = executor.parse("{ orderItem(id: 1) { nope } }")
        assert isinstance(failure, Failure)
        error = failure.request_error()
        errors.append(error)
        assert error.__traceback__ is None and error.errors[0].__traceback__ is None
    assert errors[0] is not errors[1] and errors[0].errors[0] is not errors[1].errors[0]
    assert executor.parse("{ orderItem(id: 1) { nope } }") is failure  # cached as data


def test_the_apq_store_is_bounded_by_bytes(make_gateway, upstream):
    gw = make_gateway(apq_cache_bytes=20_000)
    for i in range(30):
        query = "{ orderItem(id: 1) { id } }" + f" # {i:03}" + " " * 1000
        digest = hashlib.sha256(query.encode()).hexdigest()
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
        response = gw.client.post(
            f"{gw.url}/graphql", json={"query": query, "extensions": extensions}, headers=AUTH
        )
        assert response.status_code == 200
    assert 10_000 < cache_bytes(gw, "apq") <= 20_000


async def test_the_response_cache_sweeps_expired_entries_and_is_bounded_by_bytes():
    now = [0.0]
    cache = MemoryResponseCache(1000, max_bytes=10_000, clock=lambda: now[0])
    for i in range(6):
        await cache.put(f"k{i}", b"x" * 3000, ttl=5)
    assert cache.entries.nbytes <= 10_000 and len(cache.entries) == 3
    now[0] = 6.0  # every entry has expired; the next write sweeps them all
    await cache.put("fresh", b"y" * 10, ttl=5)
    assert len(cache.entries) == 1 and cache.entries.nbytes < 300
    assert await cache.get("fresh") == b"y" * 10


def test_large_get_answers_stay_within_the_response_cache_bytes(make_gateway, upstream):
    gw = make_gateway(response_cache_ttl=5, response_cache_bytes=1_000_000)
    fields = "id price netAmount state { name } product { name sku }"
    for i in range(6):
        response = gw.client.get(
            f"{gw.url}/graphql",
            params={"query": f"{{ orderItems(first: 300) {{ nodes {{ {fields} }} }} }} # {i}"},
            headers=AUTH,
        )
        assert response.status_code == 200
    assert 0 < cache_bytes(gw, "response") <= 1_000_000


# --- metric labels ---------------------------------------------------------------------------


def test_names_that_select_nothing_take_no_label_slot(gateway, upstream):
    for i in range(210):
        body = gateway.client.post(
            f"{gateway.url}/graphql",
            json={"query": "query Real { __typename }", "operationName": f"Ghost{i}"},
            headers=AUTH,
        ).json()
        assert codes(body) == [ErrorCode.BAD_REQUEST]
    gateway.data("query Real { __typename }")
    text = gateway.client.get(f"{gateway.url}/metrics").text
    assert "Ghost" not in text
    real = 'engine="compiled",operation="Real",outcome="ok"'
    assert metric(text, "oms_gateway_operations_total", real) >= 1
    unselected = 'engine="none",operation="unselected",outcome="rejected"'
    assert metric(text, "oms_gateway_operations_total", unselected)


# --- hostile bytes ---------------------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": [value]}
    return value


@pytest.fixture(scope="module")
def hostile_upstream() -> Iterator[str]:
    """A fake OMS whose items 2 to 4 each break the contract in one hostile way."""
    items = copy.deepcopy(make_items())
    for item in items[1:4]:
        item["product"] = copy.deepcopy(item["product"])  # products are shared by items
    items[1]["product"]["attributes"] = deep(124)  # 248 levels: the fake can still send it
    items[2]["product"]["productimage_set"][0]["order"] = 2**40
    items[3]["product"]["attributes_kwargs"] = [1, 2, 3]
    items[4]["product"] = copy.deepcopy(items[4]["product"])
    items[4]["product"]["attributes"] = deep(100)  # 200 levels: deep, and still fits an answer
    with serve(create_fake_app(FakeOms(items=items))) as url:
        yield url


HOSTILE = {
    2: "product { attributes }",
    3: "product { images { order } }",
    4: "product { attributeValues { key } }",
}


def test_deep_upstream_json_that_fits_the_answer_is_served(make_gateway, hostile_upstream):
    gw = make_gateway(upstream_url=hostile_upstream)
    value = gw.data("{ orderItem(id: 5) { product { attributes } } }")["orderItem"]["product"]
    assert value["attributes"] == deep(100)


class _Body(httpx.AsyncByteStream):
    """A streamed body, as the transport reads it (httpx reads `content=` bodies eagerly)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def json_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, stream=_Body(body), headers={"content-type": "application/json"})


def test_upstream_json_nested_600_deep_is_a_bad_response():
    # Deeper than the fake OMS (orjson) can write: raw bytes from a mock transport.
    body = b'{"id": 2, "state": {}, "product": {"a": ' + b"[" * 600 + b"]" * 600 + b"}}"

    def nested(request: httpx.Request) -> httpx.Response:
        return json_response(body)

    async def detail() -> None:
        settings = Settings(upstream_retries=0, upstream_url="http://127.0.0.1:9")
        transport = HttpxTransport(settings, httpx.MockTransport(nested))
        try:
            session = UpstreamSession(
                OmsClient(transport, settings), "Token t", time.monotonic() + 5
            )
            await session.detail(2)
        finally:
            await transport.aclose()

    with pytest.raises(UpstreamBadResponse):
        asyncio.run(detail())


def nested_lists(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_orjson_reads_and_writes_the_depths_the_client_assumes():
    # Large bodies are decoded inside wrappers so that `loads` refuses what `dumps` could not
    # write: exact only while these are orjson's limits.
    orjson.loads(nested_lists(_LOADS_LEVELS))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(nested_lists(_LOADS_LEVELS + 1))
    orjson.dumps(orjson.loads(nested_lists(_DUMPS_LEVELS)))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(orjson.loads(nested_lists(_DUMPS_LEVELS + 1)))


# A page's item sits 3 levels down (body, `results`, the item), its product's attributes 4.
DEEPEST_IN_A_PAGE = _DUMPS_LEVELS - _ANSWER_LEVELS - 4


def with_depth(levels: int) -> Any:
    """A value `levels` containers deep, of both kinds."""
    value: Any = []
    for level in range(1, levels):
        value = [value] if level % 2 else {"a": value}
    return value


@pytest.fixture(scope="module")
def deep_page_upstream() -> Iterator[str]:
    """Pages of 50 (decoded inside wrappers): item 2's product attributes as deep as a page
    may hold, item 52's one level deeper."""
    items = copy.deepcopy(make_items())
    for item, levels in ((items[1], DEEPEST_IN_A_PAGE), (items[51], DEEPEST_IN_A_PAGE + 1)):
        item["product"] = copy.deepcopy(item["product"])
        item["product"]["attributes"] = with_depth(levels)
    with serve(create_fake_app(FakeOms(items=items))) as url:
        yield url


@pytest.mark.parametrize("upstream_client", ["httpx", "aiohttp"])
def test_a_large_page_is_refused_from_the_same_depth_as_any_body(
    make_gateway, deep_page_upstream, http, upstream_client
):
    page = http.get(f"{deep_page_upstream}/api/v1/oms/order_items/?limit=50&page=1", headers=AUTH)
    assert len(page.content) >= _WRAP_FROM  # the path under test
    gw = make_gateway(upstream_url=deep_page_upstream, upstream_client=upstream_client)
    query = "query($p: Int) { orderItems(page: $p, pageSize: 50) { nodes { id product { attributes } } } }"
    first = gw.data(query, {"p": 1})["orderItems"]["nodes"]
    assert first[1]["product"]["attributes"] == with_depth(DEEPEST_IN_A_PAGE)
    body = gw.query(query, {"p": 2})
    assert codes(body) == [ErrorCode.UPSTREAM_BAD_RESPONSE]
    assert body["data"] == {"orderItems": None}
    assert "nested too deep" in body["errors"][0]["message"]


def refusal(body: bytes) -> str:
    """Why the client refuses `body` as a detail, from a mock transport (it can be any bytes)."""

    def answer(request: httpx.Request) -> httpx.Response:
        return json_response(body)

    async def detail() -> str:
        settings = Settings(upstream_retries=0, upstream_url="http://127.0.0.1:9")
        transport = HttpxTransport(settings, httpx.MockTransport(answer))
        session = UpstreamSession(OmsClient(transport, settings), "Token t", time.monotonic() + 5)
        try:
            await session.detail(2)
        except UpstreamBadResponse as error:
            return str(error)
        finally:
            await transport.aclose()
        raise AssertionError("the body was accepted")

    return asyncio.run(detail())


def outcome(body: bytes) -> Any:
    """The item the client makes of `body` as a detail, or the message it refuses it with."""
    try:
        return refusal(body)
    except AssertionError:
        pass

    async def detail() -> Any:
        settings = Settings(upstream_retries=0, upstream_url="http://127.0.0.1:9")
        transport = HttpxTransport(settings, httpx.MockTransport(lambda r: json_response(body)))
        session = UpstreamSession(OmsClient(transport, settings), "Token t", time.monotonic() + 5)
        try:
            return await session.detail(2)
        finally:
            await transport.aclose()

    return asyncio.run(detail())


def test_a_small_body_with_few_brackets_skips_the_depth_probe_exactly_at_its_limit():
    # As deep as the answer allows, with no other bracket: counted, not probed, and decoded
    # (then refused only for not being an item).
    deepest = nested_lists(_PROBE_FREE)
    assert deepest.count(b"[") == _PROBE_FREE and len(deepest) <= _COUNT_UPTO
    assert "mis-shaped" in refusal(deepest)
    answer = orjson.loads(deepest)  # what the count let through fits in an answer
    for _ in range(_ANSWER_LEVELS):
        answer = [answer]
    orjson.dumps(answer)
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps([answer])
    # One level deeper is one bracket too many for the count: probed, and refused for depth.
    assert "nested too deep" in refusal(nested_lists(_PROBE_FREE + 1))
    # An item at the limit, of both kinds of containers: the probe's verdict, as before.
    item = {"id": 2, "state": {}, "product": {"attributes": with_depth(_PROBE_FREE - 2)}}
    assert outcome(orjson.dumps(item)) == item
    item["product"]["attributes"] = with_depth(_PROBE_FREE - 1)
    assert "nested too deep" in outcome(orjson.dumps(item))


def test_brackets_inside_strings_only_count_against_skipping_the_probe():
    name = "[{" * _PROBE_FREE  # over the count alone, yet one level deep
    item = {"id": 2, "state": {"name": name}, "product": {"name": "{" * 300}}
    body = orjson.dumps(item)
    assert body.count(b"[") + body.count(b"{") > _PROBE_FREE and len(body) <= _COUNT_UPTO
    assert outcome(body) == item
    # A large body is probed whatever it counts, and refused from the same depth.
    pad = "x" * _COUNT_UPTO
    item = {"id": 2, "state": {}, "product": {"pad": pad, "a": with_depth(_PROBE_FREE - 2)}}
    assert outcome(orjson.dumps(item)) == item
    item["product"]["a"] = with_depth(_PROBE_FREE - 1)
    assert "nested too deep" in outcome(orjson.dumps(item))


PAD = b', "pad": "' + b"x" * _WRAP_FROM + b'"'


def escaping(k: int) -> bytes:
    """A body that closes `k` of the wrappers it is decoded in and opens `k` again."""
    return b'{"id": 2, "state": {}, "product": {}' + PAD + b"}" + b"]" * k + b"," + b"[" * k + b"{}"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # Not one JSON value, though it is one inside the wrappers (`],[` closes one, opens one).
        (b'{"id": 2, "state": {}, "product": {}' + PAD + b"}],[{}", "undecodable"),
        (b'{"id": 2, "state": {}, "product": {}' + PAD + b"}]]]],[[[[{}", "undecodable"),
        # The wrappers come off eight, then one, at a time: an escape from any of them.
        *[(escaping(k), "undecodable") for k in (2, 7, 8, 9, 776, 777)],
        (b'{"id": 2, "state": {}, "product": {}' + PAD + b"} ]", "undecodable"),
        (b" " * _WRAP_FROM, "undecodable"),
        (b'{"id": 2, "product": ' + nested_lists(600) + PAD + b"}", "nested too deep"),
        (b'{"id": 2, "product": ' + nested_lists(_LOADS_LEVELS) + PAD + b"}", "undecodable"),
    ],
)
def test_large_bodies_are_refused_as_any_body(body, why):
    assert len(body) >= _WRAP_FROM
    assert why in refusal(body)


@pytest.mark.parametrize("item", list(HOSTILE))
def test_hostile_upstream_values_fail_their_field(make_gateway, hostile_upstream, item):
    gw = make_gateway(upstream_url=hostile_upstream)
    response = gw.post(
        f"{{ bad: orderItem(id: {item}) {{ id {HOSTILE[item]} }} good: orderItem(id: 1) {{ id }} }}"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert codes(body) == [ErrorCode.UPSTREAM_BAD_RESPONSE]
    assert body["data"]["good"] == {"id": "1"}


async def test_a_count_beyond_int_is_a_bad_response():
    # The fake OMS cannot count past its items: a mock transport answers this one.
    def huge_count(request: httpx.Request) -> httpx.Response:
        return json_response(json.dumps({"count": 2**40, "results": []}).encode())

    settings = Settings(upstream_retries=0, upstream_url="http://127.0.0.1:9")
    transport = HttpxTransport(settings, httpx.MockTransport(huge_count))
    try:
        session = UpstreamSession(OmsClient(transport, settings), "Token t", time.monotonic() + 5)
        with pytest.raises(UpstreamBadResponse):
            await session.list_page("simple", limit=1, page=1, order_number=None)
    finally:
        await transport.aclose()


ITEM = {"id": 1, "state": {"id": 1}, "product": {"id": 1}}
SIMPLE_ITEM = {"id": 1, "state": 1, "product": 1}


@pytest.mark.parametrize(
    ("kind", "item", "good"),
    [
        ("full", ITEM, True),
        ("simple", SIMPLE_ITEM, True),
        ("full", SIMPLE_ITEM, False),
        ("simple", ITEM, False),
        ("full", {**ITEM, "id": "1"}, False),
        ("full", {**ITEM, "id": True}, False),
        ("full", {"state": {}, "product": {}}, False),
        ("full", {**ITEM, "state": None}, False),
        ("full", {"id": 1, "state": {}}, False),
        ("simple", {**SIMPLE_ITEM, "product": 1.0}, False),
        ("full", [ITEM], False),
    ],
)
async def test_a_page_holds_only_items_of_its_shape(kind, item, good):
    # The second of two items breaks the shape: every item is checked, not the first alone.
    page = {"count": 2, "results": [ITEM if kind == "full" else SIMPLE_ITEM, item]}

    def answer(request: httpx.Request) -> httpx.Response:
        return json_response(json.dumps(page).encode())

    settings = Settings(upstream_retries=0, upstream_url="http://127.0.0.1:9")
    transport = HttpxTransport(settings, httpx.MockTransport(answer))
    try:
        session = UpstreamSession(OmsClient(transport, settings), "Token t", time.monotonic() + 5)
        if good:
            served = await session.list_page(kind, limit=2, page=1, order_number=None)
            assert [i["id"] for i in served.results] == [1, 1]
        else:
            with pytest.raises(UpstreamBadResponse):
                await session.list_page(kind, limit=2, page=1, order_number=None)
    finally:
        await transport.aclose()


def test_deep_variables_are_bad_user_input(make_gateway, upstream):
    gw = make_gateway(response_cache_ttl=5)
    post = gw.post("query($ids: [ID!]!) { orderItemsByIds(ids: $ids) { id } }", {"ids": deep(300)})
    assert post.status_code == 400 and codes(post.json()) == [ErrorCode.BAD_USER_INPUT]
    get = gw.client.get(
        f"{gw.url}/graphql",
        params={"query": "{ __typename }", "variables": json.dumps({"v": deep(300)})},
        headers=AUTH,
    )
    assert get.status_code == 400 and codes(get.json()) == [ErrorCode.BAD_USER_INPUT]
    assert upstream.calls() == 0


def test_a_non_ascii_authorization_is_unauthenticated(gateway, upstream):
    response = gateway.client.post(
        f"{gateway.url}/graphql",
        json={"query": "{ orderItem(id: 1) { id } }"},
        headers=[(b"Authorization", b"Token \xff\xfe-secret")],
    )
    assert response.status_code == 200
    body = response.json()
    assert codes(body) == [ErrorCode.UNAUTHENTICATED]
    assert "secret" not in response.text
    assert upstream.calls() == 0


# --- the budget counts what the loaders fetch ------------------------------------------------


def test_a_page_past_the_end_costs_its_count_call(make_gateway, upstream):
    past = "{ orderItems(first: 10, page: 99) { totalCount nodes { id } } }"
    gw = make_gateway(max_upstream_calls=1)
    body = gw.post(past).json()
    assert body["errors"][0]["extensions"] == {"code": ErrorCode.COST_LIMIT, "cost": 2, "budget": 1}
    assert upstream.calls() == 0
    roomy = make_gateway(max_upstream_calls=2)
    assert roomy.data(past)["orderItems"] == {"totalCount": 300, "nodes": []}
    assert upstream.calls() == 2
