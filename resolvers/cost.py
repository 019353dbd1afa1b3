"""The upstream-call budget: the calls an operation's loaders will make, from the loaders' code.

Every figure comes from the functions the resolvers and the loaders use: `plan_list` (and so
`resolvers.pagination`'s page planning), `page_keys` and `count_key` for lists, `parse_id` and
`parse_ids` for ids. Root fields are grouped by response key as graphql-core executes them.
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
from resolvers.fetch import ListRequest, count_key, page_keys, parse_id, parse_ids
from resolvers.loaders import PageKey
from resolvers.planner import SelectionWalker, plan_list


@dataclass(slots=True)
class Cost:
    """What the loaders of one operation fetch, at most."""

    pages: set[PageKey] = field(default_factory=set)  # every page a list loads
    counts: set[PageKey] = field(default_factory=set)  # loaded only if a list is past the end
    ids: set[int] = field(default_factory=set)  # detail calls, unless a full page brings them
    lists: list[ListRequest] = field(default_factory=list)  # each `orderItems`, as planned

    @property
    def page_calls(self) -> set[PageKey]:
        # A slim page is served by its full twin when both are wanted (one batch).
        return {k for k in self.pages if k.kind == "full" or k._replace(kind="full") not in self}

    @property
    def calls(self) -> int:
        """The budget's figure: an upper bound that the loaders reach when no page is past the
        end and no id is among the items a full page of the same operation returns."""
        return len(self.page_calls) + len(self.counts - self.pages) + len(self.ids)

    def __contains__(self, key: PageKey) -> bool:
        return key in self.pages


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    settings: Settings,
) -> Cost:
    """Fields with bad arguments count nothing: they fail on their own, before any call."""
    walker = SelectionWalker(fragments, getattr(variables, "coerced", variables) or {})
    root = schema.query_type
    assert root is not None
    groups: dict[str, list[FieldNode]] = {}
    for node in walker.fields([operation.selection_set]):
        groups.setdefault((node.alias or node.name).value, []).append(node)
    cost = Cost()
    for nodes in groups.values():
        name = nodes[0].name.value
        definition = root.fields.get(name)
        if definition is None:
            continue
        try:
            args = get_argument_values(definition, nodes[0], variables)
            if name == "orderItems":
                request = plan_list(settings, walker, nodes, args)
                cost.lists.append(request)
                cost.pages.update(page_keys(request))
                fallback = count_key(request)
                if fallback is not None:
                    cost.counts.add(fallback)
            elif name == "orderItem":
                cost.ids.add(parse_id(args["id"], "id"))
            elif name == "orderItemsByIds":
                cost.ids.update(parse_ids(list(args["ids"]), settings.max_ids))
        except (GatewayError, ValueError, TypeError, KeyError):
            continue
    return cost


def upstream_calls(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    settings: Settings,
) -> int:
    """The number the budget compares with `max_upstream_calls`."""
    return operation_cost(schema, operation, fragments, variables, settings).calls
