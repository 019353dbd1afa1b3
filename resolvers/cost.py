"""The upstream-call budget: the calls an operation's loaders will make, from the loaders' code.

Every figure comes from the functions the resolvers and the loaders use: each root field's
entry in `resolvers.roots` plans its calls with the functions its fetch uses (`plan_list`,
`count_fallback` and `unplaced_calls` for lists, `parse_id` and `parse_ids` for ids). Root
fields are grouped by response key as graphql-core executes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    get_argument_values,
)

from gateway.errors import GatewayError
from gateway.settings import Settings
from resolvers.fetch import ListRequest, count_fallback
from resolvers.loaders import PageKey
from resolvers.pagination import unplaced_calls
from resolvers.planner import NO_SHAPE, SelectionWalker, list_shape
from resolvers.roots import root_of


@dataclass(slots=True)
class Cost:
    """What the loaders of one operation fetch, planned at the page cap known when it starts."""

    pages: set[PageKey] = field(default_factory=set)  # every page a list loads
    counts: set[PageKey] = field(default_factory=set)  # loaded only if a list is past the end
    ids: set[int] = field(default_factory=set)  # detail calls, unless a full page brings them
    lists: list[ListRequest] = field(default_factory=list)  # each `orderItems`, as planned
    # `last` alone is placed by its count, so its further pages are counted at worst.
    unplaced: int = 0

    @property
    def page_calls(self) -> set[PageKey]:
        # A slim page is served by its full twin when both are wanted (one batch).
        return {k for k in self.pages if k.kind == "full" or k._replace(kind="full") not in self}

    @property
    def calls(self) -> int:
        """The budget's figure. Not an upper bound on the calls made: a page served shorter than
        planned teaches a smaller cap and re-plans with more pages (`resolvers.fetch` checks
        those against the budget again), and retries repeat calls. Data can also spare calls:
        a count call goes out only when every page of its list is past the end, and an id among
        the items a full page of the same operation returns is not fetched again."""
        pages, counts = self.page_calls, self.counts - self.pages
        return len(pages) + len(counts) + len(self.ids) + self.unplaced

    def __contains__(self, key: PageKey) -> bool:
        return key in self.pages

    def add_list(self, request: ListRequest, max_limit: int) -> None:
        """One planned `orderItems` field, at page cap `max_limit`."""
        self.lists.append(request)
        self.pages.update(request.page_keys())
        fallback = count_fallback(request)
        if fallback is not None:
            self.counts.add(fallback)
        self.unplaced += unplaced_calls(request.window, max_limit)


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    settings: Settings,
    max_limit: int | None = None,
) -> Cost:
    """Fields with bad arguments count nothing: they fail on their own, before any call.
    `max_limit` is the page cap learned from the upstream (else `upstream_max_limit`)."""
    walker = SelectionWalker(fragments, getattr(variables, "coerced", variables) or {})
    root = schema.query_type
    assert root is not None
    groups: dict[str, list[FieldNode]] = {}
    for node in walker.fields([operation.selection_set]):
        groups.setdefault((node.alias or node.name).value, []).append(node)
    cost = Cost()
    for nodes in groups.values():
        definition = root.fields.get(nodes[0].name.value)
        entry = root_of(definition) if definition is not None else None
        if entry is None:
            continue  # introspection and `__typename` make no call
        try:
            args = get_argument_values(definition, nodes[0], variables)
            shape = list_shape(walker, nodes) if entry.shaped else NO_SHAPE
            entry.plan(cost, settings, args, shape, max_limit)
        except (GatewayError, ValueError, TypeError, KeyError):
            continue
    return cost


def upstream_calls(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    settings: Settings,
    max_limit: int | None = None,
) -> int:
    """The number the budget compares with `max_upstream_calls`."""
    return operation_cost(schema, operation, fragments, variables, settings, max_limit).calls
