"""The GraphQL schema: types, scalars and the `schema` object built from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from resolvers.query import Query
from schema.scalars import SCALAR_MAP


def read_field(source: Any, name: str) -> Any:
    """The default resolver: resolved values are upstream dicts, so a leaf is one lookup."""
    if type(source) is dict:
        return source.get(name)
    return getattr(source, name)


class Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Errors are logged once, where they are turned into client errors (with masking)."""


def make_schema(extensions: Sequence[type[SchemaExtension] | SchemaExtension] = ()) -> Schema:
    return Schema(
        query=Query,
        extensions=list(extensions),  # type: ignore[arg-type]
        config=StrawberryConfig(default_resolver=read_field, scalar_map=SCALAR_MAP),
    )


schema = make_schema()
