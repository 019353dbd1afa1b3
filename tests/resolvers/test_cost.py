"""The budget counts what the loaders fetch: checked on every operation the differential
test's generator makes, against the calls the fake OMS received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.execution.executor import Executor, RequestError
from gateway.fake_upstream.app import FakeOms, create_fake_app
from gateway.upstream.client import OmsClient, UpstreamSession
from resolvers.context import Context
from resolvers.cost import Cost, operation_cost
from resolvers.fetch import ListRequest
from resolvers.loaders import Loaders, PageKey
from resolvers.pagination import encode_cursor, plan_pages
from tests.conftest import AUTH, serve
from tests.generated import Case, cases
from tests.support import WIDE_DOCUMENTS, make_executors, oms_client

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
    return make_executors(**WIDE_DOCUMENTS, max_upstream_calls=10**6)


def placed_pages(request: ListRequest, max_limit: int) -> set[PageKey]:
    """The pages a `last` window is placed on once its probe told the count: none when the
    probe holds the whole window, or when only the count is wanted."""
    if not request.window.from_end or not request.wants_items:
        return set()
    window = request.window.settle(len(FAKE.matching(request.order_number)))
    if window.offset + window.size <= request.plan.limit:
        return set()
    placed = plan_pages(window, max_limit)
    return {PageKey(request.kind, request.order_number, placed.limit, p) for p in placed.pages}


def expected_calls(cost: Cost, max_limit: int) -> int:
    """What the loaders must fetch, from the fake OMS's data: every planned page, the pages a
    `last` window is placed on once its probe told the count, a count call only where a list's
    pages are all past the end, and the ids no planned full page brings."""
    planned = set(cost.pages)
    pages = set(planned)
    counts = set()
    for request in cost.lists:
        pages |= placed_pages(request, max_limit)
        if request.window.from_end:
            continue  # placed by its count: no count call of its own
        total = len(FAKE.matching(request.order_number))
        key = request.plan.pages[0]
        past_the_end = (key - 1) * request.plan.limit >= total
        fallback = ("simple", request.order_number, 1, 1)
        if request.plan.pages[0] > 1 and past_the_end and fallback not in cost.pages:
            counts.add(fallback)
    # A slim page is served by its full twin when both are wanted (as Cost.page_calls).
    calls = {k for k in pages if k.kind == "full" or k._replace(kind="full") not in pages}
    # Only planned pages spare detail calls: the ids are asked for in the operation's first
    # tick, while a `last` window's placed page is asked for once its probe has answered.
    brought: set[int] = set()
    for page in planned:
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
        if completed:
            assert made == expected_calls(cost, executor.settings.upstream_max_limit), case.query
        if any(r.window.from_end and r.wants_items for r in cost.lists):
            event("a `last` window with items")
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


# `last` windows at several page caps: the generator above meets few of them.
CAPS = (3, 7, 10, 100)
FILTERS = (None, "2021000002", "2021000010", "nope")
SELECTIONS = ("nodes { id }", "nodes { id state { name } }", "edges { cursor }", "totalCount")


@pytest.fixture(scope="module")
def capped() -> dict[int, tuple[Executor, Executor]]:
    return {cap: make_executors(upstream_max_limit=cap, max_upstream_calls=10**6) for cap in CAPS}


@st.composite
def last_windows(draw: st.DrawFn) -> tuple[int, Case]:
    cap, number = draw(st.sampled_from(CAPS)), draw(st.sampled_from(FILTERS))
    arguments = [f"last: {draw(st.integers(0, 30))}"]
    if number is not None:
        arguments.append(f'orderNumber: "{number}"')
    if draw(st.booleans()):
        arguments.append(f'after: "{encode_cursor(draw(st.integers(0, 320)), number)}"')
    selection = draw(st.sampled_from(SELECTIONS))
    query = f"{{ orderItems({', '.join(arguments)}) {{ {selection} }} }}"
    return cap, Case("clean", query, {}, {})


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(window=last_windows())
async def test_a_last_window_costs_its_worst_placement_exactly(
    window: tuple[int, Case], capped: dict[int, tuple[Executor, Executor]], client: OmsClient
) -> None:
    """The calls made are the oracle's, and the budget exceeds them by exactly the placement
    calls the data spared: the budget is the worst placement, no more."""
    cap, case = window
    for executor in capped[cap]:
        outcome = await made_calls(executor, client, case)
        assert outcome is not None
        cost, made, completed = outcome
        [request] = cost.lists
        assert completed
        assert made == expected_calls(cost, cap), case.query
        spared = cost.unplaced - len(placed_pages(request, cap) - cost.pages)
        assert cost.calls - made == spared >= 0, case.query
        event("worst placement" if spared == 0 else "data spared placement calls")


@pytest.mark.parametrize(
    ("cap", "query", "calls"),
    [
        # The probe (page 1 of 7), then items 293-299 straddle two pages: the worst placement.
        (7, "{ orderItems(last: 7) { nodes { id } } }", 3),
        # An order of 5 items: the probe (page 1 of 3), then items 2-4 on pages 2 and 3 of 2.
        (3, '{ orderItems(last: 3, orderNumber: "2021000010") { nodes { id } } }', 3),
        (10, "{ orderItems(last: 5) { totalCount } }", 1),  # only the count: one call
    ],
)
async def test_the_budget_of_a_last_window_is_reached(
    cap: int,
    query: str,
    calls: int,
    capped: dict[int, tuple[Executor, Executor]],
    client: OmsClient,
) -> None:
    for executor in capped[cap]:
        outcome = await made_calls(executor, client, Case("clean", query, {}, {}))
        assert outcome is not None
        cost, made, _ = outcome
        assert made == cost.calls == calls
