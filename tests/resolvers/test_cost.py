"""The budget counts what the loaders fetch: checked on every operation the differential
test's generator makes, against the calls the fake OMS received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings

from gateway.execution.executor import Executor, RequestError
from gateway.fake_upstream.app import FakeOms, create_fake_app
from gateway.upstream.client import OmsClient, UpstreamSession
from resolvers.context import Context
from resolvers.cost import Cost, operation_cost
from resolvers.loaders import Loaders, PageKey
from resolvers.pagination import plan_pages
from tests.conftest import AUTH, serve
from tests.generated import Case, cases
from tests.support import make_executors, oms_client

FAKE = FakeOms()


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    with serve(create_fake_app(FAKE)) as url:
        yield url


@pytest.fixture(scope="module")
async def client(fake_url: str) -> AsyncIterator[OmsClient]:
    async with oms_client(fake_url) as oms:
        yield oms


@pytest.fixture(scope="module")
def executors() -> tuple[Executor, Executor]:
    return make_executors(
        max_tokens=20000,
        max_aliases=500,
        max_directives=500,
        max_selection_set=1000,
        max_field_comparisons=10**9,
        max_upstream_calls=10**6,
    )


def expected_calls(cost: Cost, max_limit: int) -> int:
    """What the loaders must fetch, from the fake OMS's data: every planned page, the pages a
    `last` window is placed on once its probe told the count, a count call only where a list's
    pages are all past the end, and the ids no full page brings."""
    pages = set(cost.pages)
    counts = set()
    for request in cost.lists:
        total = len(FAKE.matching(request.order_number))
        if request.window.from_end:
            window, probe = request.window.settle(total), request.plan
            if request.wants_items and window.offset + window.size > probe.limit:
                placed = plan_pages(window, max_limit)
                kind, number = request.kind, request.order_number
                pages |= {PageKey(kind, number, placed.limit, p) for p in placed.pages}
            continue
        key = request.plan.pages[0]
        past_the_end = (key - 1) * request.plan.limit >= total
        fallback = ("simple", request.order_number, 1, 1)
        if request.plan.pages[0] > 1 and past_the_end and fallback not in cost.pages:
            counts.add(fallback)
    # A slim page is served by its full twin when both are wanted (as Cost.page_calls).
    calls = {k for k in pages if k.kind == "full" or k._replace(kind="full") not in pages}
    brought: set[int] = set()
    for page in pages:
        if page.kind == "full":
            items = FAKE.matching(page.order_number)
            brought |= {
                i["id"] for i in items[(page.page - 1) * page.limit : page.page * page.limit]
            }
    return len(calls) + len(counts - pages) + len(cost.ids - brought)


async def made_calls(
    executor: Executor, client: OmsClient, case: Case
) -> tuple[Cost, int, bool] | None:
    """The cost, the calls made, and whether every root field ran to its end (a failing
    non-null root field cancels the others, which then make fewer calls)."""
    session = UpstreamSession(client, AUTH["Authorization"], deadline=10**12, request_id="req")
    context = Context(executor.settings, session, Loaders(session, detail_concurrency=3), "req")
    try:
        prepared = executor.prepare(case.query)
        operation = prepared.operation(None)
        coerced = executor.coerce_variables(operation, case.variables)
        result = await executor.execute(prepared, operation, case.variables, context)
    except RequestError:
        return None
    cost = operation_cost(
        executor.schema, operation, prepared.fragments, coerced, executor.settings
    )
    return cost, sum(session.calls.values()), result.data is not None


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())  # faults are ignored: this fake OMS is always clean
async def test_budget_equals_the_calls_made(
    case: Case, executors: tuple[Executor, Executor], client: OmsClient
) -> None:
    for executor in executors:
        outcome = await made_calls(executor, client, case)
        if outcome is None:
            event("rejected")
            continue
        cost, made, completed = outcome
        assert made <= cost.calls  # the budget is an upper bound, reached unless data spares
        # A `last` window is placed by the count its probe reads; the oracle does not model
        # every such case yet, so those operations are held to the bound above only.
        if completed and not any(r.window.from_end for r in cost.lists):
            assert made == expected_calls(cost, executor.settings.upstream_max_limit), case.query
        event(
            "cancelled"
            if not completed
            else "budget reached"
            if made == cost.calls
            else "data spared calls"
        )


def test_the_cost_of_a_list_past_the_end_and_of_ids_a_list_brings() -> None:
    executor = make_executors()[0]
    query = "{ a: orderItems(first: 10, page: 99) { nodes { id } } b: orderItem(id: 1) { id } }"
    prepared = executor.prepare(query)
    operation = prepared.operation(None)
    variables = executor.coerce_variables(operation, {})
    cost = operation_cost(executor.schema, operation, {}, variables, executor.settings)
    assert cost.calls == 3  # the page, its count call, the id
