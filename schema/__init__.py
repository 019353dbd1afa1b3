"""The GraphQL schema: types, scalars and the `schema` object built from them."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig

from resolvers.query import Query
from schema.scalars import SCALAR_MAP


def read_field(source: Any, name: str) -> Any:
    """The default resolver: resolved values are upstream dicts, so a leaf is one lookup."""
    if type(source) is dict:
        return source.get(name)
    return getattr(source, name)


def make_schema() -> strawberry.Schema:
    """The schema; the gateway executes it with graphql-core directly (gateway/execution.py)."""
    return strawberry.Schema(
        query=Query,
        config=StrawberryConfig(default_resolver=read_field, scalar_map=SCALAR_MAP),
    )


schema = make_schema()
