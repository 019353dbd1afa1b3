"""Dataloaders: identical upstream requests happen once per operation, counted at the fake."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from gateway.errors import UpstreamBadResponse
from gateway.execution.executor import Executor
from gateway.fake_upstream.app import FakeOms, Faults, create_fake_app
from gateway.settings import UPSTREAM_CLIENTS, Settings
from gateway.upstream.client import OmsClient, UpstreamSession, open_http_client
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import make_schema
from tests.conftest import AUTH, serve
from tests.support import FaultSwitch, oms_client


def test_same_page_under_two_aliases_is_fetched_once(gateway, upstream):
    data = gateway.data(
        "{ a: orderItems(first: 10) { nodes { id } } b: orderItems(first: 10) { nodes { price } } }"
    )
    assert len(data["a"]["nodes"]) == len(data["b"]["nodes"]) == 10
    assert upstream.fake.stats()["calls"] == {"list-simple": 1}


def test_slim_page_is_served_by_its_full_twin(gateway, upstream):
    data = gateway.data(
        "{ a: orderItems(first: 10) { nodes { id } } b: orderItems(first: 10) { nodes { state { name } } } }"
    )
    assert [n["id"] for n in data["a"]["nodes"]] == [str(i) for i in range(1, 11)]
    assert upstream.fake.stats()["calls"] == {"list": 1}


def test_repeated_ids_cost_one_call_each(gateway, upstream):
    data = gateway.data('{ orderItemsByIds(ids: ["3", "4", "3", "03", "4", "3"]) { id } }')
    assert [i["id"] for i in data["orderItemsByIds"]] == ["3", "4", "3", "3", "4", "3"]
    assert upstream.fake.stats()["calls"] == {"detail": 2}


def test_same_id_under_aliases_and_roots_is_fetched_once(gateway, upstream):
    gateway.data(
        '{ a: orderItem(id: 5) { id } b: orderItem(id: "5") { price } '
        "c: orderItemsByIds(ids: [5, 6]) { id } }"
    )
    assert upstream.fake.stats()["calls"] == {"detail": 2}


def test_missing_ids_are_null_in_their_slots(gateway, upstream):
    data = gateway.data("{ orderItemsByIds(ids: [2, 99999, 3]) { id } }")
    assert data["orderItemsByIds"] == [{"id": "2"}, None, {"id": "3"}]
    assert upstream.fake.stats()["calls"] == {"detail": 3}


def test_full_list_items_prime_the_detail_loader(gateway, upstream):
    data = gateway.data(
        "{ orderItems(first: 10) { nodes { product { name } } } "
        "orderItem(id: 4) { price } orderItemsByIds(ids: [2, 9, 11]) { id } }"
    )
    assert data["orderItem"]["price"] == upstream.fake.by_id[4]["price"]
    assert [i["id"] for i in data["orderItemsByIds"]] == ["2", "9", "11"]
    # Items 2, 4 and 9 came with the page; only 11 needed a detail call.
    assert upstream.fake.stats()["calls"] == {"list": 1, "detail": 1}


def test_slim_list_items_do_not_prime_details(gateway, upstream):
    gateway.data("{ orderItems(first: 5) { nodes { id } } orderItem(id: 2) { product { name } } }")
    assert upstream.fake.stats()["calls"] == {"list-simple": 1, "detail": 1}


def test_detail_calls_run_concurrently_under_the_cap(make_gateway, upstream):
    gw = make_gateway(detail_concurrency=4)
    upstream.fake.faults = Faults(latency=0.05)
    ids = ", ".join(str(i) for i in range(10, 30))
    data = gw.data(f"{{ orderItemsByIds(ids: [{ids}]) {{ id }} }}")
    assert len(data["orderItemsByIds"]) == 20
    stats = upstream.fake.stats()
    assert stats["calls"] == {"detail": 20}
    assert stats["max_in_flight"] == 4


async def test_a_lone_detail_leaves_the_cache_as_its_batch_would():
    """An operation's only load skips aiodataloader's batch tick (`Loaders.item_alone`), but
    its outcome stays in the items loader: a later load of the same id (graphql-core rerunning
    a bailed compiled run) gets the same item, the same null, or the same error, without a
    call; a batched load of another operation gets the same answers."""
    switch = FaultSwitch(create_fake_app(FakeOms()))
    switch.details = {4: "malformed"}
    with serve(switch) as url:
        async with oms_client(url) as client:

            def loaders() -> Loaders:
                session = UpstreamSession(client, AUTH["Authorization"], time.monotonic() + 30)
                return Loaders(session, detail_concurrency=1)

            def calls(of: Loaders) -> int:
                return sum(of.session.calls.values())

            alone, batched = loaders(), loaders()
            item = await alone.item_alone(3)
            assert item is not None and item["id"] == 3
            assert await alone.item_alone(3) is item
            assert await alone.items.load(3) is item
            assert await alone.item_alone(999999) is None
            assert await alone.items.load(999999) is None
            with pytest.raises(UpstreamBadResponse) as failed:
                await alone.item_alone(4)
            with pytest.raises(UpstreamBadResponse) as again:
                await alone.items.load(4)
            assert again.value is failed.value
            assert calls(alone) == 3  # one per id, none for the repeats

            assert await batched.items.load(3) == item
            assert await batched.items.load(999999) is None
            with pytest.raises(UpstreamBadResponse):
                await batched.items.load(4)
            assert calls(batched) == 3


# What an operation builds must die with it by reference counting: as cyclic garbage, a 50-item
# list's pages and items waited for the collector, which then ran every few dozen operations.
_OPERATIONS = {
    "nested list": "{ orderItems(first: 20) { nodes { id price state { name } } } }",
    "slim list and its full twin": (
        "{ a: orderItems(first: 5) { nodes { id } } b: orderItems(first: 5) { nodes { product { sku } } } }"
    ),
    "detail and ids": "{ orderItem(id: 7) { id } orderItemsByIds(ids: [7, 8, 7]) { id } }",
    "lone detail": "{ orderItem(id: 9) { id price } }",
}


@pytest.mark.parametrize("client_name", UPSTREAM_CLIENTS)
async def test_an_operation_leaves_no_cyclic_garbage(upstream, client_name):
    settings = Settings(upstream_url=upstream.url, upstream_client=client_name)
    executor = Executor(make_schema(settings)._schema, settings)
    async with open_http_client(settings) as transport:
        client = OmsClient(transport, settings)

        calls: dict[str, int] = {}

        async def operation(query: str) -> weakref.ref[Loaders]:
            session = UpstreamSession(client, AUTH["Authorization"], time.monotonic() + 30)
            context = Context(settings, session, Loaders(session, detail_concurrency=3), "req")
            prepared = executor.prepare(query)
            result = await executor.execute(prepared, prepared.operation(None), None, context)
            assert not result.errors and result.engine == "compiled"
            assert session.calls  # the loaders fetched something
            calls.clear()
            calls.update(session.calls)
            return weakref.ref(context.loaders)

        for query in _OPERATIONS.values():
            await operation(query)  # warm: connections, compiled variants
        gc.collect()
        gc.disable()
        try:
            for name, query in _OPERATIONS.items():
                loaders = await operation(query)
                assert loaders() is None, name  # freed when the operation let go of it
                left = gc.collect()
                # httpx's own request objects make one small cycle per call (no body in it).
                assert (
                    left == 0 if client_name == "aiohttp" else left < 100 * sum(calls.values())
                ), name
        finally:
            gc.enable()
