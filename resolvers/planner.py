"""The endpoint planner: read a selection set and pick the cheapest upstream endpoint for it."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)

from gateway.errors import BadUserInput
from gateway.settings import Settings
from gateway.upstream.client import SIMPLE_BY_ID, ListKind
from resolvers.context import Context
from resolvers.fetch import Connection, ListRequest, fetch_connection
from resolvers.pagination import COUNT_PLAN, plan_pages, probe_plan, resolve_window

# Order numbers are short codes; a longer value is a mistake or an attack, not a filter.
MAX_ORDER_NUMBER_LENGTH = 64

# What list-simple names by id only, as the client declares it (upstream keys that are the
# fields' GraphQL names too); every other item field is in both lists.
_NESTED_BY_ID = frozenset(SIMPLE_BY_ID)
_KNOWN_WITHOUT_CALL = frozenset({"id", "__typename"})


class ListShape(NamedTuple):
    """What a list's fetch needs from its selection set."""

    items: bool  # it selects items or edges, not only `totalCount` or `pageInfo`
    full: bool  # the items' selection reaches past what list-simple returns


# A root that is no list: its fetch does not read its selection.
NO_SHAPE = ListShape(items=True, full=True)


class SelectionWalker:
    """Walks selection sets through fragments and inline fragments, honouring @skip/@include."""

    def __init__(
        self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self.fragments = fragments
        self.variables = variables

    @classmethod
    def of(cls, info: Any) -> SelectionWalker:
        """A walker for graphql-core resolve info (variables as a dict or as VariableValues)."""
        variables = info.variable_values
        return cls(info.fragments, getattr(variables, "coerced", variables) or {})

    def fields(self, selection_sets: Iterable[SelectionSetNode | None]) -> Iterator[FieldNode]:
        for selection_set in selection_sets:
            if selection_set is None:
                continue
            for selection in selection_set.selections:
                if not self._included(selection):
                    continue
                if isinstance(selection, FieldNode):
                    yield selection
                elif isinstance(selection, InlineFragmentNode):
                    yield from self.fields([selection.selection_set])
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is not None:
                        yield from self.fields([fragment.selection_set])

    def children(self, nodes: Iterable[FieldNode], name: str) -> list[FieldNode]:
        """The fields named `name` (under any alias) in the selection sets of `nodes`."""
        return [f for f in self.fields(n.selection_set for n in nodes) if f.name.value == name]

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name in ("skip", "include"):
                value = self._if_argument(directive.arguments)
                if (name == "skip") == value:
                    return False
        return True

    def _if_argument(self, arguments: Any) -> bool:
        for argument in arguments:
            if argument.name.value == "if":
                value = argument.value
                if isinstance(value, BooleanValueNode):
                    return value.value
                if isinstance(value, VariableNode):
                    return bool(self.variables.get(value.name.value))
        return False


def item_selections(walker: SelectionWalker, connection_nodes: list[FieldNode]) -> list[FieldNode]:
    """The field nodes that select on OrderItem inside a connection: `nodes` and `edges.node`."""
    edges = walker.children(connection_nodes, "edges")
    return walker.children(connection_nodes, "nodes") + walker.children(edges, "node")


def needs_full_items(walker: SelectionWalker, item_nodes: list[FieldNode]) -> bool:
    """True when the items' selection reaches past what list-simple returns."""
    for field in walker.fields(n.selection_set for n in item_nodes):
        if field.name.value in _NESTED_BY_ID:
            for sub in walker.fields([field.selection_set]):
                if sub.name.value not in _KNOWN_WITHOUT_CALL:
                    return True
    return False


def list_shape(walker: SelectionWalker, connection_nodes: list[FieldNode]) -> ListShape:
    """The shape of an `orderItems` selection: whether it reads items, and which list serves."""
    items = bool(
        walker.children(connection_nodes, "nodes") or walker.children(connection_nodes, "edges")
    )
    return ListShape(items, needs_full_items(walker, item_selections(walker, connection_nodes)))


def check_filter(argument: str, value: str | None) -> str | None:
    """A filter value as sent upstream; refused before any call when it cannot be meant.

    An empty value would be forwarded as `order_number=` and return the unfiltered list; a
    control character has no place in a code and only ever smuggles something into a log or URL.
    """
    if value is None:
        return None
    if len(value) > MAX_ORDER_NUMBER_LENGTH:
        raise BadUserInput(
            f"`{argument}` is at most {MAX_ORDER_NUMBER_LENGTH} characters.", argument=argument
        )
    if not value.strip():
        raise BadUserInput(f"`{argument}` must not be empty or blank.", argument=argument)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise BadUserInput(f"`{argument}` must not contain control characters.", argument=argument)
    return value


def plan_list(
    settings: Settings,
    shape: ListShape,
    args: Mapping[str, Any],
    max_limit: int | None = None,
) -> ListRequest:
    """Plan one `orderItems` field from its (coerced) arguments and its selection.

    `max_limit` is the upstream page cap as known now (`PageCap.limit`); by default the
    `upstream_max_limit` ceiling.
    """
    order_number = check_filter("orderNumber", args.get("orderNumber"))
    window = resolve_window(
        settings,
        first=args.get("first"),
        after=args.get("after"),
        page=args.get("page"),
        page_size=args.get("pageSize"),
        last=args.get("last"),
        before=args.get("before"),
        order_number=order_number,
    )
    wants_items = window.size > 0 and shape.items
    if not wants_items:
        # Only the count is needed: one slim item tells it.
        return ListRequest("simple", window, COUNT_PLAN, order_number, False)
    limit = max_limit or settings.upstream_max_limit
    plan = probe_plan(window, limit) if window.from_end else plan_pages(window, limit)
    kind: ListKind = "full" if shape.full else "simple"
    return ListRequest(kind, window, plan, order_number, True)


async def list_connection(
    context: Context, args: Mapping[str, Any], shape: ListShape
) -> Connection:
    """Plan and fetch one `orderItems` field: both execution paths call exactly this."""
    settings = context.settings
    request = plan_list(settings, shape, args, context.list_limit())
    return await fetch_connection(
        context.loaders,
        request,
        context.page_cap,
        settings.upstream_max_limit,
        settings.max_upstream_calls,
    )
