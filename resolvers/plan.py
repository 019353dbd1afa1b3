"""The plan of an operation: its root fields as graphql-core groups them, and what each list reads.

One collection of the selection, with graphql-core's own `collect_fields` and
`collect_subfields` (so `@skip`/`@include` and fragments mean exactly what execution makes of
them), serves the budget, the compiled path and graphql-core's `orderItems` resolver alike. A
plan depends only on the variables that shape it, so it is made once per combination of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_object_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues

from gateway.bounded import remember
from gateway.upstream.client import SIMPLE_BY_ID
from resolvers.planner import NO_SHAPE, ListShape
from resolvers.roots import Root, root_of

# Plans kept per operation (one per combination of the variables that shape it).
MAX_PLANS = 32
_ABSENT = object()
_KNOWN_WITHOUT_CALL = frozenset({"id", "__typename"})


@dataclass(frozen=True, slots=True)
class PlannedRoot:
    """One root response key: its merged fields, its registry entry and what its fetch reads."""

    key: str
    details: list[FieldDetails]
    definition: GraphQLField | None  # None for a field the schema lacks (it never validates)
    entry: Root | None = None  # None for `__typename` and introspection: no call
    shape: ListShape = NO_SHAPE


@dataclass(frozen=True, slots=True)
class Plan:
    """An operation's root fields in response order, for one combination of shaping variables."""

    roots: tuple[PlannedRoot, ...]
    fragments: dict[str, FragmentDetails]
    # Collection failed (a null `if:`): graphql-core reports it, before any call is made.
    failed: bool = False
    deferred: bool = False  # some root field is under `@defer`
    shapes: dict[str, ListShape] = field(default_factory=dict)  # by response key, shaped roots
    # The entry of the only root field that fetches, when exactly one does (no `@defer`): its
    # loads are then the operation's only ones, so nothing could join their batch.
    sole: Root | None = None

    def shape(self, key: str) -> ListShape | None:
        return self.shapes.get(key)


def plan_operation(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    operation: OperationDefinitionNode,
    variables: VariableValues,
    hide_suggestions: bool = False,
) -> Plan:
    """The operation's plan for `variables` (only those that shape it are read)."""
    query_type = schema.query_type
    assert query_type is not None
    details = {name: FragmentDetails(definition) for name, definition in fragments.items()}
    try:
        collected = collect_fields(
            schema, details, variables, query_type, operation, hide_suggestions
        )
    except GraphQLError:
        return Plan((), details, failed=True)
    roots: list[PlannedRoot] = []
    shapes: dict[str, ListShape] = {}
    collector = _Collector(schema, details, variables, operation, hide_suggestions)
    for key, group in collected.grouped_field_set.items():
        definition = schema.get_field(query_type, group[0].node.name.value)
        entry = root_of(definition) if definition is not None else None
        if entry is None or definition is None:
            roots.append(PlannedRoot(key, group, definition))
            continue
        shape = NO_SHAPE
        if entry.shaped:
            shape = shapes[key] = collector.list_shape(definition, group)
        roots.append(PlannedRoot(key, group, definition, entry, shape))
    deferred = bool(collected.new_defer_usages)
    fetching = [root.entry for root in roots if root.entry is not None]
    sole = fetching[0] if len(fetching) == 1 and not deferred else None
    return Plan(tuple(roots), details, False, deferred, shapes, sole)


def shape_of(plan: Plan | None, info: GraphQLResolveInfo) -> ListShape:
    """The shape of the root list `info` resolves: read from the request's plan, else (when no
    plan was made, as for graphql-core run without the executor) collected now, alike."""
    if plan is not None and info.path.prev is None:
        shape = plan.shape(str(info.path.key))
        if shape is not None:
            return shape
    details = {name: FragmentDetails(d) for name, d in info.fragments.items()}
    collector = _Collector(info.schema, details, info.variable_values, info.operation, True)
    definition = info.parent_type.fields[info.field_name]
    return collector.list_shape(definition, [FieldDetails(n, None) for n in info.field_nodes])


@dataclass(frozen=True, slots=True)
class _Collector:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    variables: VariableValues
    operation: OperationDefinitionNode
    hide_suggestions: bool

    def list_shape(self, definition: GraphQLField, details: list[FieldDetails]) -> ListShape:
        """Whether a connection's selection reads items, and whether list-simple serves them."""
        try:
            connection = self.children(definition, details)
            items = list(connection.get("nodes", ()))
            for edges in connection.get("edges", ()):
                items += self.children(*edges).get("node", ())
            full = any(self.reaches_past_ids(*item) for item in items)
        except GraphQLError:
            # A null `if:` below the root: graphql-core fails that field's completion after its
            # fetch, which then reads the whole selection (as the budget counts it).
            return NO_SHAPE
        return ListShape(bool(connection.keys() & {"nodes", "edges"}), full)

    def reaches_past_ids(self, item: GraphQLField, details: list[FieldDetails]) -> bool:
        """Whether an item selection reads more of what list-simple names by id than the id."""
        fields = self.children(item, details)
        return any(
            not self.children(*nested).keys() <= _KNOWN_WITHOUT_CALL
            for name in SIMPLE_BY_ID
            for nested in fields.get(name, ())
        )

    def children(
        self, definition: GraphQLField, details: list[FieldDetails]
    ) -> dict[str, list[tuple[GraphQLField, list[FieldDetails]]]]:
        """The fields selected on the object `definition` returns, by schema name: each response
        key's definition and merged fields."""
        parent = get_named_type(definition.type)
        if not is_object_type(parent):
            return {}
        assert isinstance(parent, GraphQLObjectType)
        collected = collect_subfields(
            self.schema,
            self.fragments,
            self.variables,
            self.operation,
            parent,
            details,
            self.hide_suggestions,
        )
        by_name: dict[str, list[tuple[GraphQLField, list[FieldDetails]]]] = {}
        for group in collected.grouped_field_set.values():
            name = group[0].node.name.value
            child = self.schema.get_field(parent, name)
            if child is not None:
                by_name.setdefault(name, []).append((child, group))
        return by_name


class OperationPlans:
    """One operation's plans, made once per combination of the variables that shape them:
    those of directives, and those of arguments below the root (`State.name(locale:)`)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        *,
        hide_suggestions: bool = False,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.operation = operation
        self.hide_suggestions = hide_suggestions
        query_type = schema.query_type
        assert query_type is not None
        roots = frozenset(n for n, d in query_type.fields.items() if root_of(d) is not None)
        self.shaping = shaping_variables(operation, fragments, roots)
        self.plans: dict[tuple[Any, ...], Plan] = {}
        # The budget's figures by every variable's value and the page cap, kept by the executor.
        self.calls: dict[tuple[Any, ...], int] = {}

    def key(self, variables: VariableValues) -> tuple[Any, ...]:
        coerced = variables.coerced
        return tuple(coerced.get(name, _ABSENT) for name in self.shaping)

    def plan(self, variables: VariableValues) -> Plan:
        return remember(self.plans, self.key(variables), lambda: self._plan(variables), MAX_PLANS)

    def _plan(self, variables: VariableValues) -> Plan:
        return plan_operation(
            self.schema, self.fragments, self.operation, variables, self.hide_suggestions
        )


def shaping_variables(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    roots: frozenset[str],
) -> tuple[str, ...]:
    """Variables used by directives or by arguments of fields below the root."""
    names: set[str] = set()
    selection_sets = [operation.selection_set, *(f.selection_set for f in fragments.values())]
    for selection_set in selection_sets:
        for selection in selections(selection_set):
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    _collect_variables(argument.value, names)
            if isinstance(selection, FieldNode) and selection.name.value not in roots:
                for argument in selection.arguments or ():
                    _collect_variables(argument.value, names)
    return tuple(sorted(names))


def selections(selection_set: SelectionSetNode) -> list[Any]:
    """Every selection written inside `selection_set`, at any depth (spreads not followed)."""
    found: list[Any] = []
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            found.append(selection)
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)
    return found


def reads_variables(node: FieldNode) -> bool:
    """Whether any argument of `node` names a variable: if not, its values are the document's."""
    names: set[str] = set()
    for argument in node.arguments or ():
        _collect_variables(argument.value, names)
    return bool(names)


def _collect_variables(value: ValueNode, names: set[str]) -> None:
    if isinstance(value, VariableNode):
        names.add(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _collect_variables(item, names)
    elif isinstance(value, ObjectValueNode):
        for object_field in value.fields:
            _collect_variables(object_field.value, names)
