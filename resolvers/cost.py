"""The upstream-call budget: how many distinct upstream requests an operation will make."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    get_argument_values,
)

from gateway.errors import GatewayError
from gateway.settings import Settings
from resolvers.fetch import parse_id, parse_ids
from resolvers.loaders import PageKey
from resolvers.pagination import unplaced_calls
from resolvers.planner import SelectionWalker, plan_list


def upstream_calls(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Any,
    settings: Settings,
    max_limit: int | None = None,
) -> int:
    """Distinct list pages plus distinct detail ids, deduplicated as the dataloaders do.

    An upper bound: items that a full page returns may still spare some detail calls. Fields
    with bad arguments count nothing here; they fail on their own during execution.
    """
    walker = SelectionWalker(fragments, getattr(variables, "coerced", variables) or {})
    root = schema.query_type
    assert root is not None
    pages: set[PageKey] = set()
    ids: set[int] = set()
    unplaced = 0
    limit = max_limit or settings.upstream_max_limit
    for field in walker.fields([operation.selection_set]):
        name = field.name.value
        definition = root.fields.get(name)
        if definition is None:
            continue
        try:
            args = get_argument_values(definition, field, variables)
            if name == "orderItems":
                request = plan_list(settings, walker, [field], args, max_limit)
                pages.update(request.page_keys())
                # `last` alone: placed by the count, so its pages are counted at worst.
                unplaced += unplaced_calls(request.window, limit)
            elif name == "orderItem":
                ids.add(parse_id(args["id"], "id"))
            elif name == "orderItemsByIds":
                # A bad id fails only its own slot, so the others still count.
                ids.update(i for i in parse_ids(args["ids"]) if isinstance(i, int))
        except (GatewayError, ValueError, TypeError, KeyError):
            continue
    # A slim page is served by its full twin when both are wanted.
    distinct = {p for p in pages if not (p.kind == "simple" and p._replace(kind="full") in pages)}
    return len(distinct) + len(ids) + unplaced
