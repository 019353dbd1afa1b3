"""The GraphQL schema: types, scalars, and `make_schema`, which builds it (nothing at import)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLSchema
from strawberry.schema.config import StrawberryConfig

from gateway.settings import Settings
from resolvers.planner import MAX_ORDER_NUMBER_LENGTH
from schema.query import Query
from schema.scalars import SCALAR_MAP


def read_field(source: Any, name: str) -> Any:
    """The default resolver: resolved values are upstream dicts, so a leaf is one lookup."""
    if type(source) is dict:
        return source.get(name)
    return getattr(source, name)


def make_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; the gateway executes it with graphql-core directly (gateway/execution/).

    Root field and argument descriptions state the limits of `settings` (the defaults for the
    exported SDL), so a client reads in the schema what the gateway enforces.
    """
    built = strawberry.Schema(
        query=Query,
        config=StrawberryConfig(default_resolver=read_field, scalar_map=SCALAR_MAP),
    )
    describe_limits(built._schema, settings or Settings())
    return built


def describe_limits(graphql_schema: GraphQLSchema, settings: Settings) -> None:
    """Fill the `{setting}` placeholders of the root fields' descriptions with their values."""
    limits = {
        name: str(getattr(settings, name))
        for name in ("max_page_size", "default_page_size", "max_ids", "max_upstream_calls",
                     "upstream_max_limit")
    }  # fmt: skip
    limits["max_order_number_length"] = str(MAX_ORDER_NUMBER_LENGTH)
    query_type = graphql_schema.query_type
    assert query_type is not None
    for field in query_type.fields.values():
        for described in (field, *field.args.values()):
            text = described.description
            if text and "{" in text:
                for name, value in limits.items():
                    text = text.replace("{" + name + "}", value)
                described.description = text
