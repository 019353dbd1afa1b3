"""The upstream-call budget: the calls an operation's loaders will make, from the loaders' code.

Every figure comes from the functions the resolvers and the loaders use: each root field's
entry in `resolvers.roots` plans its calls with the functions its fetch uses (`plan_list`,
`count_fallback` and `unplaced_calls` for lists, `parse_id` and `parse_ids` for ids). Root
fields and list shapes are read from the operation's plan (`resolvers.plan`), the one the
engines use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.values import VariableValues, get_argument_values

from gateway.errors import GatewayError
from gateway.settings import Settings
from resolvers.fetch import ListRequest, count_fallback
from resolvers.loaders import PageKey
from resolvers.pagination import unplaced_calls
from resolvers.plan import Plan, plan_operation


@dataclass(slots=True)
class Cost:
    """What the loaders of one operation fetch, planned at the page cap known when it starts."""

    pages: set[PageKey] = field(default_factory=set)  # every page a list loads
    counts: set[PageKey] = field(default_factory=set)  # loaded only if a list is past the end
    ids: set[int] = field(default_factory=set)  # detail calls, unless a full page brings them
    lists: list[ListRequest] = field(default_factory=list)  # each `orderItems`, as planned
    # A `last` window without `before` is placed by the count its probe reads, which no one
    # knows when the budget is checked: its further pages are counted at the worst placement.
    # That worst is (size - 1) // cap + 2 pages, the most a window of `size` items straddles
    # at the cap, and `plan_pages` never plans more; it is reached (so calls == budget) when
    # the placed window straddles that many pages and no smaller page covers it in fewer, e.g.
    # `last: 7` at cap 7 over 300 items: probe page 1, then items 293-299 on two pages (a list
    # whose length is a multiple of the cap never reaches it). The data spares the rest when
    # the window lands on fewer pages, or inside the probe.
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
        if request.wants_items:  # a count-only window is placed by its one count call
            self.unplaced += unplaced_calls(request.window, max_limit)


def plan_cost(
    plan: Plan, variables: VariableValues, settings: Settings, max_limit: int | None = None
) -> Cost:
    """What the operation `plan` was made for fetches with `variables`, at page cap `max_limit`
    (the cap learned from the upstream, else `upstream_max_limit`).

    Fields with bad arguments count nothing: they fail on their own, before any call (an
    argument given a null variable fails in `get_argument_values`, as graphql-core reports it).
    An operation whose collection fails (a null `if:` at the root) makes no call at all.
    """
    cost = Cost()
    for root in plan.roots:
        if root.entry is None or root.definition is None:
            continue  # introspection and `__typename` make no call
        try:
            args = get_argument_values(root.definition, root.details[0].node, variables)
            root.entry.plan(cost, settings, args, root.shape, max_limit)
        except (GatewayError, GraphQLError, ValueError, TypeError, KeyError):
            continue
    return cost


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues,
    settings: Settings,
    max_limit: int | None = None,
) -> Cost:
    """The cost of an operation planned afresh (the executor reuses its cached plans)."""
    plan = plan_operation(schema, fragments, operation, variables)
    return plan_cost(plan, variables, settings, max_limit)
