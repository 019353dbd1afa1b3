"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLSchema
from starlette.responses import Response

from gateway.execution.executor import Executor, RequestError
from gateway.execution.graphql_errors import client_error
from gateway.fake_upstream.data import make_items
from gateway.settings import Settings
from gateway.upstream.client import OmsClient, UpstreamSession, open_http_client
from resolvers.context import Context
from resolvers.loaders import Loaders
from schema import make_schema
from tests.conftest import AUTH

ROOT = Path(__file__).resolve().parents[1]  # the checkout
SDL = ROOT / "schema.graphql"
README = (ROOT / "README.md").read_text()


class FakeClock:
    """The upstream's time for a gateway under test (`create_app(clock=...)`): it moves only
    when told or when the gateway sleeps, and a sleep returns at once and is recorded. Tests
    assert on the sleeps requested and the time that passed, never on the wall clock."""

    def __init__(self, now: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self.now = now
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self._wall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)  # still a point where other tasks run

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._wall += seconds


def metrics_text(gateway: Any) -> str:
    response = gateway.client.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    text: str = response.text
    return text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the first sample of `name` with these labels; a missing one fails."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} with {labels} in the metrics")


def selection_nodes(document: DocumentNode) -> int:
    """Fields, inline fragments and spreads written in the document."""
    count = 0
    stack: list[Any] = [d.selection_set for d in document.definitions]  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        count += len(node.selections)
        stack.extend(getattr(s, "selection_set", None) for s in node.selections)
    return count


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table: its header cells and its rows' cells (stripped)."""
    found: list[tuple[list[str], list[list[str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"\|[-:| ]+\|$", lines[i + 1])
        ):
            header = _cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            found.append((header, rows))
        else:
            i += 1
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


# --- Both execution paths in-process against a fake OMS (the engine tests and the budget's). ---


# No retries and a breaker that never opens: both paths must see the same upstream answers.
QUIET = {"upstream_retries": 0, "breaker_min_calls": 10**9}


class FaultSwitch:
    """The fake OMS behind a switch that fails chosen detail ids, or whole endpoints.

    Deterministic where `Faults(rate=...)` is not: which concurrent call a rate picks depends
    on the order the calls arrive in.
    """

    _DETAIL = re.compile(r"/api/v1/oms/order_items/(\d+)/")
    _LIST = "/api/v1/oms/order_items/"
    _SIMPLE = "/api/v1/oms/order_items/list-simple/"

    def __init__(self, app: Any) -> None:
        self.app = app
        self.details: dict[int, str] = {}  # id -> fault kind
        self.lists: dict[str, str] = {}  # "list" | "list-simple" -> fault kind

    def clear(self) -> None:
        self.details, self.lists = {}, {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = self._fault(scope) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        await _faulty_response(kind)(scope, receive, send)

    def _fault(self, scope: Any) -> str | None:
        path = scope["path"]
        if path == self._LIST:
            return self.lists.get("list")
        if path == self._SIMPLE:
            return self.lists.get("list-simple")
        match = self._DETAIL.fullmatch(path)
        return self.details.get(int(match[1])) if match else None


def _faulty_response(kind: str) -> Response:
    json = "application/json"
    if kind.isdigit():
        return Response(b'{"detail": "Injected failure."}', int(kind), media_type=json)
    bodies = {
        "malformed": b"{'detail': not json",
        "truncated": b'{"id": 1, "state": {"id"',
        "misshaped": b'{"count": "many", "results": {"id": 1}}',
        "html": b"<html><body>Bad Gateway</body></html>",
    }
    return Response(bodies[kind], media_type="text/html" if kind == "html" else json)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(item: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        for parent in parents:
            item = item[parent]
        item[key] = value

    return edit


# Contract breaches, one per item id from 2 (listed first: the cases the unit tests name) and
# then round-robin over the later ids, so any page of a list meets most of them.
BREACHES: list[Callable[[dict[str, Any]], None]] = [
    _set("price", 599.99),  # 2: a float amount: a nullable Decimal's error
    _set("product.productimage_set", [{"id": None, "order": 1}]),  # 3: a required id
    _set("created_date", "07/07/2021"),  # 4: not ISO 8601
    _set("state.modified_date", "yesterday"),
    _set("product.productimage_set", ["not-an-object"]),  # 6: an unexpected error
    _set("omnitron_id", 2**40),  # not a 32-bit Int
    _set("omnitron_id", "12"),  # 8: coerced to 12
    _set("price_currency", 5),  # 9: coerced to "5"
    _set("price_list.is_auto_sync", "yes"),  # not a Boolean
    _set("price_list", "not-an-object"),
    _set("state.id", 1.5),  # an ID that is no integer
    _set("product.attributes_kwargs", ["a", "list"]),  # attributeValues fails
    _set("product.productimage_set", 5),  # not iterable
    _set("state.translations", "tr"),  # 15: the default name instead
    _set("product.id", None),  # a required id
    _set("extra_field", []),
    _set("product.productimage_set", None),  # a required list
    _set("state.content_type", True),  # 19: coerced to 1
    _set("product.sku", 12),
    _set("state.enum_value", 4.5),
    _set("stock_list.pk", None),
    _set("retail_price", "1,000.00"),
    _set("product.remote_modified_date", 5),
    _set("tax_rate", 8),
    _set("price_list.modified_date", ""),
    _set("parent_omnitron_id", 3.0),
    _set("product.name", True),
]


def mangled_items() -> list[dict[str, Any]]:
    """The fake's items with contract breaches: item 1 is clean, the next ones have one breach
    each (in the order of BREACHES), and all later ones three breaches each."""
    items = copy.deepcopy(make_items())
    count = len(BREACHES)
    for item in items[1:]:
        index = item["id"] - 2
        for step in (0, 10, 19) if index >= count else (0,):
            BREACHES[(index + step) % count](item)
    return items


@dataclass
class Outcome:
    """What a client would get, in comparable form."""

    data: bytes  # `data` exactly as serialized, so key order counts
    errors: list[bytes]  # each client error as canonical JSON, in the executor's order
    calls: dict[str, int] = field(default_factory=dict)
    engine: str = "none"  # the engine that answered, as the executor reports it
    fallback: str | None = None  # why graphql-core answered, if it did

    @property
    def compiled(self) -> bool:
        """The compiled path answered (rather than graphql-core)."""
        return self.engine == "compiled"

    @property
    def bailed(self) -> bool:
        """A projector bailed, and graphql-core reran the operation from the same loaders."""
        return (self.engine, self.fallback) == ("graphql-core", "bailed")

    @property
    def sorted_errors(self) -> list[bytes]:
        return sorted(self.errors)


# Generated documents are wide: the operation limits are not what the engine tests are about.
WIDE_DOCUMENTS: dict[str, Any] = {
    "max_tokens": 20000,
    "max_aliases": 500,
    "max_directives": 500,
    "max_selection_set": 1000,
    "max_field_comparisons": 10**9,
}


def make_executors(**settings: Any) -> tuple[Executor, Executor]:
    schema: GraphQLSchema = make_schema()._schema
    options = {**QUIET, **settings}
    return (
        Executor(schema, Settings(compile_operations=False, **options)),
        Executor(schema, Settings(compile_operations=True, **options)),
    )


async def run(
    executor: Executor,
    client: OmsClient,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> Outcome:
    """One operation through `Executor.execute`, as the endpoint runs it."""
    settings = executor.settings
    session = UpstreamSession(
        client,
        AUTH["Authorization"],
        deadline=time.monotonic() + settings.operation_timeout,
        request_id="req",
    )
    context = Context(settings, session, Loaders(session, detail_concurrency=3), "req")
    try:
        prepared = executor.prepare(query)
        operation = prepared.operation(operation_name)
        result = await executor.execute(prepared, operation, variables, context)
    except RequestError as error:
        return Outcome(b"rejected", [_canonical(client_error(e, "req")) for e in error.errors])
    return Outcome(
        orjson.dumps(result.data),
        [_canonical(client_error(e, "req")) for e in result.errors or ()],
        dict(session.calls),
        result.engine,
        result.fallback,
    )


def _canonical(error: dict[str, Any]) -> bytes:
    return orjson.dumps(error, option=orjson.OPT_SORT_KEYS)


@contextlib.asynccontextmanager
async def oms_client(url: str) -> AsyncIterator[OmsClient]:
    settings = Settings(upstream_url=url, **QUIET)
    async with open_http_client(settings) as http:
        yield OmsClient(http, settings)
