"""One plan per operation and shaping variables: the budget, both engines and the resolver read it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import execute, parse

from gateway.execution.executor import Executor
from gateway.upstream.client import UpstreamSession
from resolvers.context import Context
from resolvers.loaders import Loaders
from resolvers.plan import Plan
from resolvers.planner import NO_SHAPE, ListShape
from tests.conftest import AUTH
from tests.support import make_executors, oms_client

SLIM, FULL, COUNT = ListShape(True, False), ListShape(True, True), ListShape(False, False)

SHAPES = [
    ("{ orderItems { nodes { id price state { id } product { id __typename } } } }", SLIM),
    ("{ orderItems { edges { cursor node { s: state { i: id } } } } }", SLIM),
    ("{ orderItems { nodes { ...F } } } fragment F on OrderItem { id state { id } }", SLIM),
    ("{ orderItems { nodes { id state @skip(if: true) { name } } } }", SLIM),
    ("{ orderItems { nodes { id product @include(if: false) { sku } } } }", SLIM),
    ("{ orderItems { nodes { id state { name } } } }", FULL),
    ("{ orderItems { edges { node { product { sku } } } } }", FULL),
    (
        "{ orderItems { ...C } } fragment C on OrderItemConnection { nodes { ... on OrderItem {"
        " x: product { y: name } } } }",
        FULL,
    ),  # fmt: skip
    ("{ orderItems { nodes { id } nodes { state { name } } } }", FULL),  # merged by key
    ("{ orderItems { totalCount pageInfo { hasNextPage } } }", COUNT),
    ("{ orderItems { totalCount nodes @skip(if: true) { id } } }", COUNT),
    # A null `if:` below the root fails there in graphql-core, after the fetch: it reads all.
    ("query($b: Boolean = true) { orderItems { nodes { id @include(if: $b) } } }", NO_SHAPE),
]


def plan_of(executor: Executor, query: str, variables: dict[str, Any] | None = None) -> Plan:
    prepared = executor.prepare(query)
    operation = prepared.operation(None)
    return executor.plan(prepared, operation, executor.coerce_variables(operation, variables))


@pytest.mark.parametrize(("query", "shape"), SHAPES)
def test_the_plan_reads_a_list_shape_from_the_whole_selection(query, shape):
    plan = plan_of(make_executors()[1], query, {"b": None})
    assert plan.shape("orderItems") == shape
    assert [(root.key, root.shape) for root in plan.roots] == [("orderItems", shape)]


@pytest.mark.parametrize(
    ("query", "sole"),
    [
        ("{ orderItem(id: 1) { id } }", "orderItem"),
        ("{ __typename a: orderItem(id: 1) { id } a: orderItem(id: 1) { price } }", "orderItem"),
        (
            "query($s: Boolean!) { orderItem(id: 1) { id } b: orderItem(id: 2) @skip(if: $s) { id } }",
            "orderItem",
        ),
        ("{ orderItemsByIds(ids: [1, 2]) { id } }", "orderItemsByIds"),
        ("{ orderItems { totalCount } }", "orderItems"),
        ("{ a: orderItem(id: 1) { id } b: orderItem(id: 1) { id } }", None),
        ("{ orderItem(id: 1) { id } orderItems { totalCount } }", None),
        ("{ __typename }", None),
    ],
)
def test_the_plan_names_the_only_root_field_that_fetches(query: str, sole: str | None) -> None:
    # With one fetching root, that root's loads are the operation's only ones.
    plan = plan_of(make_executors()[1], query, {"s": True})
    assert (plan.sole.name if plan.sole is not None else None) == sole


def test_root_fields_are_grouped_by_response_key_as_graphql_core_executes_them():
    query = (
        "query($s: Boolean!) { a: orderItem(id: 1) { id } ...R a: orderItem(id: 1) { price }"
        " __typename b: orderItems @skip(if: $s) { totalCount } }"
        " fragment R on Query { c: orderItemsByIds(ids: [1]) { id } }"
    )
    plan = plan_of(make_executors()[1], query, {"s": True})
    assert [(r.key, len(r.details), r.entry and r.entry.name) for r in plan.roots] == [
        ("a", 2, "orderItem"),
        ("c", 1, "orderItemsByIds"),
        ("__typename", 1, None),
    ]
    assert plan.shapes == {}  # no list planned


def test_a_null_if_at_the_root_plans_nothing_and_costs_nothing():
    executor = make_executors()[1]
    query = "query($b: Boolean = true) { orderItem(id: 1) @skip(if: $b) { id } }"
    prepared = executor.prepare(query)
    operation = prepared.operation(None)
    variables = executor.coerce_variables(operation, {"b": None})
    assert executor.plan(prepared, operation, variables).failed
    assert executor.check_budget(prepared, operation, variables) == 0  # graphql-core calls none


def test_a_plan_is_made_once_per_shaping_combination_and_shared_with_the_compiled_path():
    executor = make_executors()[1]
    query = "query($n: Int, $s: Boolean!) { orderItems(first: $n) { nodes { state @skip(if: $s) { name } } } }"
    prepared = executor.prepare(query)
    operation = prepared.operation(None)

    def plan(**values: Any) -> Plan:
        return executor.plan(prepared, operation, executor.coerce_variables(operation, values))

    first, again, other = plan(n=1, s=False), plan(n=9, s=False), plan(n=1, s=True)
    assert again is first  # `n` feeds a root argument only: the same plan
    assert (first.shape("orderItems"), other.shape("orderItems")) == (FULL, SLIM)
    compiled = executor.compiled(prepared, operation)
    assert compiled.plans is executor.plans(prepared, operation)
    variant = compiled.variant(executor.coerce_variables(operation, {"n": 3, "s": True}))
    assert not isinstance(variant, str)
    [root] = variant.roots
    assert root.shape == SLIM and root.entry is other.roots[0].entry


def test_budget_figures_are_kept_per_variable_values_and_page_cap():
    executor = make_executors()[1]
    query = "query($n: Int) { orderItems(first: $n) { nodes { id } } orderItem(id: 1) { id } }"
    prepared = executor.prepare(query)
    operation = prepared.operation(None)
    figures = executor.plans(prepared, operation).calls

    def budget(n: int, cap: int) -> int:
        variables = executor.coerce_variables(operation, {"n": n})
        return executor.check_budget(prepared, operation, variables, cap)

    assert budget(250, 100) == 3 + 1  # three pages of at most 100, and the id
    assert budget(250, 50) == 5 + 1  # a smaller cap: another figure
    assert budget(250, 100) == 4 and budget(20, 100) == 2
    assert figures == {((("n", 250),), 100): 4, ((("n", 250),), 50): 6, ((("n", 20),), 100): 2}


def test_a_figure_of_unhashable_variables_is_counted_but_not_kept():
    executor = make_executors()[1]
    prepared = executor.prepare("query($ids: [ID!]!) { orderItemsByIds(ids: $ids) { id } }")
    operation = prepared.operation(None)
    variables = executor.coerce_variables(operation, {"ids": ["1", "2", "2"]})
    assert executor.check_budget(prepared, operation, variables) == 2
    assert executor.plans(prepared, operation).calls == {}


@pytest.mark.parametrize(("query", "shape"), SHAPES[:-1])
async def test_the_resolver_without_a_plan_fetches_as_with_one(upstream, query, shape):
    """graphql-core run without the executor (no plan on the context) collects the same shape."""
    executor = make_executors()[0]
    calls = []
    async with oms_client(upstream.url) as client:
        for planned in (True, False):
            deadline = time.monotonic() + 30
            session = UpstreamSession(client, AUTH["Authorization"], deadline=deadline)
            context = Context(
                executor.settings, session, Loaders(session, detail_concurrency=3), "r"
            )
            if planned:
                prepared = executor.prepare(query)
                await executor.execute(prepared, prepared.operation(None), None, context)
                assert context.plan is not None and context.plan.shape("orderItems") == shape
            else:
                result = await execute(executor.schema, parse(query), context_value=context)
                assert not result.errors and context.plan is None
            calls.append(upstream.fake.stats()["log"])
            upstream.fake.reset()
    endpoint = "" if shape.full else "list-simple/"
    limit = 20 if shape.items else 1  # the default page, or one slim item for the count
    assert calls[0] == calls[1] == [f"/api/v1/oms/order_items/{endpoint}?limit={limit}&page=1"]
