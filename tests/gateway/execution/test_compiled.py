"""Compiled operations answer exactly as graphql-core does, including every error path."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import strawberry
from graphql import GraphQLObjectType, GraphQLSchema, get_named_type, is_object_type

from gateway.errors import ErrorCode
from gateway.execution.compiled import CompiledOperation, FieldPlan, _Codegen, _decoded_keys
from gateway.execution.executor import Executor
from gateway.fake_upstream.app import FakeOms, create_fake_app
from gateway.fake_upstream.data import make_items
from gateway.upstream.client import OmsClient
from schema import READERS, Read, install_readers, read_of
from schema.types import OBJECTS
from tests.conftest import serve
from tests.queries import ITEM_FIELDS
from tests.support import (
    BREACHES,
    FaultSwitch,
    Outcome,
    make_executors,
    mangled_items,
    oms_client,
    run,
)


@pytest.fixture(scope="module")
def mangled_url() -> Iterator[str]:
    with serve(create_fake_app(FakeOms(items=mangled_items()))) as url:
        yield url


@pytest.fixture(scope="module")
def switch() -> Iterator[tuple[FaultSwitch, str]]:
    faults = FaultSwitch(create_fake_app(FakeOms()))
    with serve(faults) as url:
        yield faults, url


@pytest.fixture(scope="module")
async def clean(upstream: Any) -> AsyncIterator[OmsClient]:
    async with oms_client(upstream.url) as client:
        yield client


@pytest.fixture(scope="module")
async def mangled(mangled_url: str) -> AsyncIterator[OmsClient]:
    async with oms_client(mangled_url) as client:
        yield client


@pytest.fixture(scope="module")
async def faulty(switch: tuple[FaultSwitch, str]) -> AsyncIterator[OmsClient]:
    async with oms_client(switch[1]) as client:
        yield client


@pytest.fixture(scope="module")
def executors() -> tuple[Executor, Executor]:
    return make_executors()


async def both(
    executors: tuple[Executor, Executor],
    client: OmsClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    ordered: bool = True,
) -> Outcome:
    """Run graphql-core then the compiled path; they must agree. Returns the compiled outcome.

    `ordered=False` compares errors as a set: root fields resolve concurrently, and graphql-core
    adds their errors in the order their upstream calls happen to answer.
    """
    standard = await run(executors[0], client, query, variables)
    compiled = await run(executors[1], client, query, variables)
    assert (standard.engine, standard.fallback) == ("graphql-core", "disabled")
    assert compiled.data == standard.data
    if ordered:
        assert compiled.errors == standard.errors
    else:
        assert compiled.sorted_errors == standard.sorted_errors
    assert compiled.calls == standard.calls
    return compiled


# --- Deterministic cases for the tricky semantics. ---

MERGED = """
query Merged($full: Boolean!, $slim: Boolean!) {
  __typename
  list: orderItems(first: 3, after: "MToxOg") {
    totalCount
    ... on OrderItemConnection { pageInfo { endCursor hasNextPage } }
    nodes { a: id ...Ids id price a: id state { __typename n: name(locale: "tr") } }
    nodes { price state { n: name(locale: "tr") id } ... @include(if: $full) { product { sku } } }
    edges @skip(if: $slim) { cursor node { __typename ...Ids } }
    pageInfo { hasPreviousPage endCursor }
  }
}
fragment Ids on OrderItem { orderId id ...Ids2 }
fragment Ids2 on OrderItem { id product { id __typename } }
"""


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (ITEM_FIELDS + "{ orderItems(first: 7) { totalCount nodes { ...ItemFields } } }", None),
        (MERGED, {"full": True, "slim": False}),
        (MERGED, {"full": False, "slim": True}),
        (
            "query($l: String, $i: ID!) { orderItem(id: $i) { state { name(locale: $l) "
            'd: name tr: name(locale: "TR_tr") } product { attributeValues { key label value '
            "dataType } } } }",
            {"l": "en-US", "i": "01"},
        ),
        (
            "{ orderItems(page: 30, pageSize: 20) { totalCount nodes { id } pageInfo { startCursor } } }",
            None,
        ),
        ("{ orderItems(first: 0) { totalCount edges { cursor } } }", None),
        ('{ orderItems(orderNumber: "2021000002") { totalCount nodes { id orderId } } }', None),
        ("{ orderItemsByIds(ids: []) { id } }", None),
    ],
)
async def test_compiled_matches_graphql_core(executors, clean, query, variables):
    outcome = await both(executors, clean, query, variables)
    assert outcome.engine == "compiled" and not outcome.errors


@pytest.mark.parametrize(
    "query",
    [
        "{ orderItems(first: -1) { totalCount } a: orderItem(id: 1) { id } }",
        '{ a: orderItem(id: "x") { id } orderItems(first: 2, page: 2) { totalCount } }',
        '{ orderItems(after: "bogus") { totalCount } }',
        "{ orderItems(first: 600) { totalCount } }",
        '{ orderItemsByIds(ids: [1, "b"]) { id } }',
        '{ orderItem(id: "99999999999999999999") { id } }',
    ],
)
async def test_bad_arguments_fail_alike(executors, clean, query):
    outcome = await both(executors, clean, query)
    # A bad id fails its own slot: an exception in a list, for graphql-core to complete.
    assert outcome.bailed if "orderItemsByIds" in query else outcome.compiled
    assert outcome.errors


async def test_missing_and_repeated_ids(executors, clean):
    outcome = await both(executors, clean, '{ orderItemsByIds(ids: [3, 999999, 3, "03"]) { id } }')
    assert outcome.engine == "compiled"
    assert orjson.loads(outcome.data) == {
        "orderItemsByIds": [{"id": "3"}, None, {"id": "3"}, {"id": "3"}]
    }
    assert outcome.calls == {"/api/v1/oms/order_items/{id}/": 2}


async def test_errors_in_list_slots(executors, faulty, switch):
    switch[0].details = {2: "502", 4: "malformed", 5: "html"}
    try:
        outcome = await both(
            executors,
            faulty,
            "{ orderItemsByIds(ids: [1, 2, 3, 4, 2, 5]) { id price } }",
        )
    finally:
        switch[0].clear()
    assert outcome.bailed  # an exception in a slot is graphql-core's to complete
    slots = orjson.loads(outcome.data)["orderItemsByIds"]
    assert [slot is None for slot in slots] == [False, True, False, True, True, True]
    paths = [orjson.loads(e)["path"] for e in outcome.errors]
    assert paths == [["orderItemsByIds", 1], ["orderItemsByIds", 3], ["orderItemsByIds", 4],
                     ["orderItemsByIds", 5]]  # fmt: skip


async def test_failing_list_nulls_only_itself(executors, faulty, switch):
    switch[0].lists = {"list-simple": "503"}
    try:
        outcome = await both(
            executors,
            faulty,
            "{ orderItems(first: 2) { nodes { id } } one: orderItem(id: 7) { id } }",
            ordered=False,
        )
    finally:
        switch[0].clear()
    assert outcome.engine == "compiled"  # a failed fetch needs no completion
    assert orjson.loads(outcome.data) == {"orderItems": None, "one": {"id": "7"}}
    assert any(b"UPSTREAM_ERROR" in e for e in outcome.errors)


# Items the fast projectors answer alone: the clean one, 15 (translations that are no map give
# the default name) and 25 (an int tax rate is a fine Decimal); every other breach bails.
CLEAN_FOR_PROJECTORS = {1, 15, 25}


@pytest.mark.parametrize("item_id", range(1, len(BREACHES) + 2))
async def test_contract_breaches_fail_alike(executors, mangled, item_id):
    query = ITEM_FIELDS + (
        f"{{ orderItem(id: {item_id}) {{ ...ItemFields __typename "
        'product { attributeValues { key value } } state { tr: name(locale: "tr") } } }'
    )
    outcome = await both(executors, mangled, query)
    assert outcome.compiled if item_id in CLEAN_FOR_PROJECTORS else outcome.bailed
    if item_id > 1:
        coerced_only = {8, 9, 15, 19, 20, 21, 25, 27, 28}  # breaches that scalars coerce away
        assert bool(outcome.errors) != (item_id in coerced_only)


async def test_null_propagates_to_the_nearest_nullable_parent(executors, mangled):
    query = "{ orderItemsByIds(ids: [1, 3]) { id product { images { key: id } } } }"
    outcome = await both(executors, mangled, query)
    assert outcome.bailed
    assert orjson.loads(outcome.data)["orderItemsByIds"][1] is None
    [error] = [orjson.loads(e) for e in outcome.errors]
    assert error["path"] == ["orderItemsByIds", 1, "product", "images", 0, "key"]
    assert error["extensions"] == {"code": ErrorCode.UPSTREAM_BAD_RESPONSE}
    assert "ProductImage.id" in error["message"]


async def test_null_in_a_page_nulls_the_list(executors, mangled):
    query = "{ orderItems(first: 5) { nodes { id price product { images { id } } } } }"
    outcome = await both(executors, mangled, query)
    assert outcome.bailed
    assert outcome.data == b'{"orderItems":null}'
    assert [orjson.loads(e)["path"] for e in outcome.errors] == [
        ["orderItems", "nodes", 1, "price"],
        ["orderItems", "nodes", 2, "product", "images", 0, "id"],
    ]


def _sparse_items() -> list[dict[str, Any]]:
    """Items lacking keys, which graphql-core reads as null: a nullable field at each level
    (item, nested object, list element), then a non-null one (`order`, an image's `id`)."""
    items = [copy.deepcopy(item) for item in make_items(12)]  # each its own nested dicts
    for item_id, path in [
        (2, "price"), (3, "product.productimage_set.0.url"), (4, "state.enum_value"),
        (5, "price_list.code"), (6, "extra_field.stock_extra_field"), (7, "stock_list"),
        (8, "order"), (9, "product.productimage_set.0.id"),
    ]:  # fmt: skip
        *parents, key = path.split(".")
        target: Any = items[item_id - 1]
        for parent in parents:
            target = target[int(parent)] if parent.isdigit() else target[parent]
        del target[key]
    return items


@pytest.fixture(scope="module")
async def sparse() -> AsyncIterator[OmsClient]:
    with serve(create_fake_app(FakeOms(items=_sparse_items()))) as url:
        async with oms_client(url) as client:
            yield client


@pytest.mark.parametrize(("first", "compiled"), [(7, True), (8, False), (12, False)])
async def test_missing_keys_read_as_null_alike(executors, sparse, first, compiled):
    # The projectors take an object's keys at once and read a dict lacking one key by key.
    query = ITEM_FIELDS + f"{{ orderItems(first: {first}) {{ nodes {{ ...ItemFields }} }} }}"
    outcome = await both(executors, sparse, query)
    assert outcome.compiled == compiled and bool(outcome.errors) != compiled
    if compiled:
        nodes = orjson.loads(outcome.data)["orderItems"]["nodes"]
        assert nodes[1]["price"] is None and nodes[6]["stockList"] is None
        assert nodes[2]["product"]["images"][0]["url"] is None


def _odd_leaf_items() -> list[dict[str, Any]]:
    """Items whose nullable leaves hold values the projectors test for last: after the usual
    value (a string, an int, a bool) and null; unhashable ones miss the scalars' memos."""
    items = [copy.deepcopy(item) for item in make_items(8)]
    for item_id, path, value in [
        (2, "price", {"amount": "1.00"}), (3, "created_date", ["2021-07-07"]),
        (4, "tax_rate", True), (5, "omnitron_id", True), (6, "price_list.is_auto_sync", 1),
        (7, "product.sku", ["sku"]),
    ]:  # fmt: skip
        *parents, key = path.split(".")
        target: Any = items[item_id - 1]
        for parent in parents:
            target = target[parent]
        target[key] = value
    return items


@pytest.fixture(scope="module")
async def odd_leaves() -> AsyncIterator[OmsClient]:
    with serve(create_fake_app(FakeOms(items=_odd_leaf_items()))) as url:
        async with oms_client(url) as client:
            yield client


@pytest.mark.parametrize("item_id", range(1, 9))
async def test_odd_nullable_leaves_fail_alike(executors, odd_leaves, item_id):
    query = ITEM_FIELDS + f"{{ orderItem(id: {item_id}) {{ ...ItemFields }} }}"
    outcome = await both(executors, odd_leaves, query)
    assert outcome.compiled == (item_id in (1, 8))
    assert bool(outcome.errors) == (item_id in (2, 3, 4, 7))  # Int and Boolean coerce theirs


def _odd_state_names() -> list[dict[str, Any]]:
    """States whose `name` is not a string, or is missing: the resolver answers null for them,
    and the compiled path, which reads the key instead of calling it, must too."""
    items = [copy.deepcopy(item) for item in make_items(6)]
    for item, name in zip(items[1:5], [7, ["Approved"], None, {"en": "x"}], strict=True):
        item["state"]["name"] = name
    del items[5]["state"]["name"]
    return items


@pytest.fixture(scope="module")
async def odd_state_names() -> AsyncIterator[OmsClient]:
    with serve(create_fake_app(FakeOms(items=_odd_state_names()))) as url:
        async with oms_client(url) as client:
            yield client


@pytest.mark.parametrize("argument", ["", "(locale: null)", '(locale: "tr")'])
async def test_a_state_name_read_as_its_key_answers_as_its_resolver(
    executors, odd_state_names, argument
):
    query = f"{{ orderItems(first: 6) {{ nodes {{ state {{ id name{argument} }} }} }} }}"
    outcome = await both(executors, odd_state_names, query)
    assert outcome.compiled and not outcome.errors
    names = [node["state"]["name"] for node in orjson.loads(outcome.data)["orderItems"]["nodes"]]
    assert isinstance(names[0], str)
    if "tr" not in argument:  # the default name: null unless a string
        assert names[1:] == [None] * 5


async def test_unexpected_errors_are_masked_alike(executors, mangled):
    outcome = await both(executors, mangled, "{ orderItem(id: 6) { product { images { url } } } }")
    assert outcome.bailed
    [error] = [orjson.loads(e) for e in outcome.errors]
    assert error["extensions"]["code"] == ErrorCode.INTERNAL_ERROR


async def test_shaping_variables_select_variants(executors, clean):
    query = (
        "query($b: Boolean!, $l: String, $n: Int) { orderItems(first: $n) { nodes { id "
        "@skip(if: $b) state { name(locale: $l) } } } }"
    )
    for variables in (
        {"b": True, "l": "tr", "n": 2},
        {"b": False, "l": "tr", "n": 3},
        {"b": True, "l": "en", "n": 1},
        {"b": True, "l": "tr", "n": 4},  # `n` only feeds a root argument: no new variant
    ):
        assert (await both(executors, clean, query, variables)).engine == "compiled"
    prepared = executors[1].prepare(query)
    plan = executors[1].compiled(prepared, prepared.operation(None))
    assert plan.shaping == ("b", "l")
    assert len(plan.variants) == 3


@pytest.mark.parametrize(
    ("query", "data"),
    [
        (
            "query($b: Boolean = true) { orderItem(id: 1) { id @include(if: $b) } }",
            b'{"orderItem":null}',
        ),
        ("query($b: Boolean = true) { orderItem(id: 1) @skip(if: $b) { id } }", b"null"),
    ],
)
async def test_a_null_if_variable_falls_back(executors, clean, query, data):
    outcome = await both(executors, clean, query, {"b": None})
    assert (outcome.engine, outcome.fallback) == ("graphql-core", "directives")
    assert outcome.data == data and outcome.errors
    outcome = await both(executors, clean, query, {})
    assert outcome.engine == "compiled"


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { queryType { name } } }",
        '{ __type(name: "OrderItem") { name } orderItem(id: 1) { id } }',
        "{ orderItem(id: 1) { id } ...Intro } fragment Intro on Query { __schema { types { name } } }",
    ],
)
async def test_introspection_falls_back(executors, clean, query):
    outcome = await both(executors, clean, query)
    assert (outcome.engine, outcome.fallback) == ("graphql-core", "unsupported")
    prepared = executors[1].prepare(query)
    assert not executors[1].compiled(prepared, prepared.operation(None)).supported


async def test_compiling_can_be_switched_off(clean):
    standard, _ = make_executors()
    prepared = standard.prepare("{ orderItem(id: 1) { id } }")
    outcome = await run(standard, clean, "{ orderItem(id: 1) { id } }")
    assert (outcome.engine, outcome.fallback) == ("graphql-core", "disabled")
    assert prepared.extras == {}


def test_compiled_plans_live_in_the_document_cache(executors):
    prepared = executors[1].prepare("query A { orderItem(id: 1) { id } } query B { __typename }")
    a = executors[1].compiled(prepared, prepared.operation("A"))
    assert isinstance(a, CompiledOperation)
    assert executors[1].compiled(prepared, prepared.operation("A")) is a
    assert executors[1].compiled(prepared, prepared.operation("B")) is not a


def test_both_paths_answer_alike_over_http(make_gateway, upstream):
    query = ITEM_FIELDS + (
        "{ orderItems(first: 50) { totalCount nodes { ...ItemFields } } "
        "some: orderItemsByIds(ids: [1, 60, 999999]) { id price } }"
    )
    bodies, calls = [], []
    for compile_operations, engine in ((False, "graphql-core"), (True, "compiled")):
        gateway = make_gateway(compile_operations=compile_operations)
        upstream.fake.reset()
        response = gateway.post(query)
        assert response.status_code == 200
        bodies.append(response.content)
        calls.append(upstream.fake.stats()["calls"])
        metrics = gateway.client.get(f"{gateway.url}/metrics").text
        labels = f'engine="{engine}",operation="anonymous",outcome="ok"'
        assert f"oms_gateway_operations_total{{{labels}}} 1.0" in metrics
    assert bodies[0] == bodies[1]
    assert calls[0] == calls[1]


# --- A bail reruns the operation in graphql-core from the same loaders: no new upstream call. ---


@pytest.fixture(scope="module")
def capped_mangled() -> Iterator[tuple[FakeOms, str]]:
    """A fake OMS serving broken items in pages of at most 7 (DRF's max_page_size)."""
    fake = FakeOms(items=mangled_items(), max_limit=7)
    with serve(create_fake_app(fake)) as url:
        yield fake, url


async def test_a_rerun_after_a_replan_makes_no_call_and_passes_the_budget(capped_mangled):
    # 1 call learns the cap (20 asked, 7 served), 3 fetch the window in pages of 7; item 2's
    # float price bails. The rerun replans the same 3 pages: were they counted as new calls,
    # 4 made + 3 would exceed the budget of 5 and refuse the field.
    fake, url = capped_mangled
    query = "{ orderItems(first: 20) { nodes { id price product { sku } } } }"
    standard, compiled = make_executors(max_upstream_calls=5)
    async with oms_client(url) as client:
        fake.reset()
        expected = await run(standard, client, query)
        fake.reset()
        outcome = await run(compiled, client, query)
    assert outcome.bailed
    assert fake.stats()["total"] == 4 == sum(outcome.calls.values())
    assert (outcome.data, outcome.errors, outcome.calls) == (
        expected.data, expected.errors, expected.calls
    )  # fmt: skip
    [error] = [orjson.loads(e) for e in outcome.errors]
    assert error["path"] == ["orderItems", "nodes", 1, "price"]  # the bail's cause, not the budget


async def test_a_rerun_refuses_a_replan_the_first_run_refused(capped_mangled):
    # The list learns the cap (15 pages of 7 for 100 items) and the budget refuses it; item 2
    # bails. The rerun plans with the cap its operation started with, so it learns and is
    # refused again instead of fetching 15 pages.
    fake, url = capped_mangled
    query = "{ n: orderItem(id: 2) { price } orderItems(first: 100) { nodes { id } } }"
    standard, compiled = make_executors(max_upstream_calls=10)
    async with oms_client(url) as client:
        fake.reset()
        expected = await run(standard, client, query)
        fake.reset()
        outcome = await run(compiled, client, query)
    assert outcome.bailed
    assert fake.stats()["total"] == 2 == sum(outcome.calls.values())
    assert outcome.data == expected.data == b'{"n":{"price":null},"orderItems":null}'
    codes = {tuple(e["path"]): e["extensions"]["code"] for e in map(orjson.loads, outcome.errors)}
    assert codes == {
        ("n", "price"): ErrorCode.UPSTREAM_BAD_RESPONSE,
        ("orderItems",): ErrorCode.COST_LIMIT,
    }


# --- How a field is read: decided once (`schema.read_of`), run by graphql-core, inlined here. ---


class _Object:
    price = "1.00"
    # A name that only `getattr` can read: the generator must not write `s.class`.
    locals()["class"] = "c"


@pytest.mark.parametrize(
    ("read", "source", "name"),
    [
        (Read.KEY, {"price": "1.00"}, "price"),
        (Read.KEY, {}, "price"),  # a missing key reads as null
        (Read.KEY, {"class": 1}, "class"),
        (Read.ATTRIBUTE, _Object(), "price"),
        (Read.ATTRIBUTE, _Object(), "class"),
    ],
)
def test_the_generated_read_is_the_reader_graphql_core_runs(read, source, name):
    plan = FieldPlan("k", "f", "T", [], None, read=read, python_name=name)  # type: ignore[arg-type]
    expression = _Codegen().read(plan, by_attribute=read is Read.ATTRIBUTE)
    scope = {"s": source, "g": source.get if type(source) is dict else None}
    assert eval(expression, scope) == READERS[read](source, name)


def _every_field(schema: GraphQLSchema, type_: GraphQLObjectType) -> str:
    """A selection of every field of `type_`, recursively (the schema has no cycles below)."""
    parts = []
    for name, definition in type_.fields.items():
        target = get_named_type(definition.type)
        parts.append(f"{name} {_every_field(schema, target)}" if is_object_type(target) else name)
    return "{ " + " ".join(parts) + " }"


async def test_every_field_is_read_alike_by_both_engines(executors, clean):
    # Were a field read one way by graphql-core and another by the generated code, the compiled
    # path would bail (graphql-core answering) or answer differently.
    schema = executors[1].schema
    query_type = schema.query_type
    assert query_type is not None
    selections = {
        root: _every_field(schema, get_named_type(query_type.fields[root].type))
        for root in ("orderItem", "orderItems")
    }
    query = (
        f"{{ orderItem(id: 1) {selections['orderItem']} "
        f"orderItems(first: 3) {selections['orderItems']} }}"
    )
    outcome = await both(executors, clean, query)
    assert outcome.engine == "compiled" and not outcome.errors
    reads = {read_of(d.extensions["strawberry-definition"]) for t in schema.type_map.values()
             if isinstance(t, GraphQLObjectType) and not t.name.startswith("__")
             for d in t.fields.values()}  # fmt: skip
    assert reads == set(Read)  # every way to read is in the query


@strawberry.type
class _Inner:
    x: int


@strawberry.type
class _Outer:
    a: _Inner = strawberry.field(metadata={OBJECTS: True})
    b: _Inner


@strawberry.type
class _Root:
    outer: _Outer


def test_a_type_is_read_one_way():
    # Its values are Python objects where one field gives them and dicts where another does.
    with pytest.raises(ValueError, match="declare OBJECTS on every field giving Inner,"):
        install_readers(strawberry.Schema(query=_Root)._schema)


async def test_arguments_spelt_out_are_coerced_once(executors, clean):
    query = "query($n: Int) { a: orderItems(first: 2) { totalCount } b: orderItems(first: $n) { totalCount } }"
    for n in (1, 3):
        assert (await both(executors, clean, query, {"n": n}, ordered=False)).compiled
    prepared = executors[1].prepare(query)
    [variant] = executors[1].compiled(prepared, prepared.operation(None)).variants.values()
    assert not isinstance(variant, str)
    assert [root.arguments is not None for root in variant.roots] == [True, False]
    assert variant.roots[0].arguments is not None and variant.roots[0].arguments["first"] == 2


def test_projectors_look_keys_up_with_the_decoders_own_strings():
    # orjson hands out one cached str per key; a lookup with that very object skips comparing
    # characters. Aliases reading one key twice keep their places.
    keys = _decoded_keys(["price", "id", "price"])
    [decoded] = orjson.loads(b'{"price": 1}')
    assert keys == ["price", "id", "price"] and keys[0] is decoded and keys[2] is decoded
