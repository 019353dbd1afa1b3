"""The GraphQL schema: its types, how each field is read, and `make_schema` (nothing at import)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, get_named_type, is_object_type
from strawberry.schema.config import StrawberryConfig
from strawberry.types.field import StrawberryField

from gateway.settings import Settings
from resolvers.planner import MAX_ORDER_NUMBER_LENGTH
from schema.query import Query
from schema.scalars import SCALAR_MAP
from schema.types import OBJECTS


class Read(Enum):
    """How a field's value is read from its parent's value. `make_schema` decides it once per
    field and installs the reader graphql-core runs; the code generator (gateway/execution/
    compiled.py) asks `read_of` and inlines the same read (`g(name)` for `s.get`, `s.name`)."""

    RESOLVER = "resolver"  # the field's own resolver
    KEY = "key"  # an upstream dict: `value.get(name)`, null when the key is missing
    ATTRIBUTE = "attribute"  # a Python object a resolver built (`OBJECTS`): `getattr(value, name)`


# The reader of a field without a resolver, as graphql-core calls it: (parent value, name).
READERS: dict[Read, Callable[[Any, str], Any]] = {Read.KEY: dict.get, Read.ATTRIBUTE: getattr}


def read_of(field: StrawberryField) -> Read:
    """How `field` is read, as `make_schema` decided."""
    if field.base_resolver is not None:
        return Read.RESOLVER
    for read, reader in READERS.items():
        if field.default_resolver is reader:
            return read
    raise ValueError(f"{field.python_name} has no reader of ours: build it with make_schema")


def make_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema; the gateway executes it with graphql-core directly (gateway/execution/).

    Root field and argument descriptions state the limits of `settings` (the defaults for the
    exported SDL), so a client reads in the schema what the gateway enforces.
    """
    built = strawberry.Schema(query=Query, config=StrawberryConfig(scalar_map=SCALAR_MAP))
    install_readers(built._schema)
    describe_limits(built._schema, settings or Settings())
    return built


def install_readers(graphql_schema: GraphQLSchema) -> None:
    """Give each field without a resolver its reader: by attribute where the fields that give
    its parent's values declare them Python objects (`OBJECTS`), else by key.

    Strawberry's fields belong to the classes, and each build first resets their reader to the
    config's default: a process builds its schemas before it serves (as `create_app` does).
    """
    objects: dict[str, bool] = {}
    for _, definition, field in _fields(graphql_schema):
        target = get_named_type(definition.type)
        if is_object_type(target):
            declared = bool(field.metadata.get(OBJECTS))
            if objects.setdefault(target.name, declared) != declared:
                raise ValueError(f"declare OBJECTS on every field giving {target.name}, or none")
    for parent, _, field in _fields(graphql_schema):
        if field.base_resolver is None:
            by_attribute = objects.get(parent.name, False)
            field.default_resolver = READERS[Read.ATTRIBUTE if by_attribute else Read.KEY]


def _fields(
    graphql_schema: GraphQLSchema,
) -> Iterator[tuple[GraphQLObjectType, GraphQLField, StrawberryField]]:
    """Every field of the schema's object types with its Strawberry field (not introspection)."""
    for type_ in graphql_schema.type_map.values():
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__"):
            for definition in type_.fields.values():
                field = (definition.extensions or {}).get("strawberry-definition")
                if isinstance(field, StrawberryField):
                    yield type_, definition, field


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
