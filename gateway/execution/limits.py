"""Document governance: one linear walk, before validation, that every later stage can trust.

The walk measures an operation the way its cost grows: depth, aliases, directives and field
selections with every fragment spread expanded, counting `__typename` and the introspection
subtree like any other field (introspection has its own depth and root-field limits, so that
GraphiQL's own introspection query passes while a multiplied one does not). Each fragment is
measured once per context (regular or introspection) and its measure reused at every spread,
so a doubling chain of fragments is arithmetic, not a walk: every selection node of the
document is visited at most twice, whatever its expansion. The walk stops at the first limit
passed. It also bounds what graphql-core's validation meets, whose overlapping-fields rule is
quadratic in the fields that share one response name and in the fields of one selection set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from gateway.errors import ErrorCode
from gateway.settings import Settings

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound of the walk, read once from the settings."""

    depth: int
    aliases: int
    directives: int
    selections: int
    selection_set: int
    comparisons: int
    introspection_depth: int
    introspection_roots: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            depth=settings.max_depth,
            aliases=settings.max_aliases,
            directives=settings.max_directives,
            selections=settings.max_selections,
            selection_set=settings.max_selection_set,
            comparisons=settings.max_field_comparisons,
            introspection_depth=settings.max_introspection_depth,
            introspection_roots=settings.max_introspection_roots,
        )


class Measure(NamedTuple):
    depth: int  # levels of fields outside introspection (an introspection root counts 1)
    introspection_depth: int  # levels inside `__schema` / `__type`, the root field included
    aliases: int
    directives: int
    selections: int  # field selections with every fragment spread expanded
    introspection_roots: int  # `__schema` and `__type` fields, expanded
    # Per response name of the merged selection set (fragments included): how many fields share
    # it and the size of their subtrees, which bound the overlapping-fields rule's comparisons.
    names: dict[str, tuple[int, int]]


class OverLimit(Exception):
    """The document passed a limit; `error` is what the client gets."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


def _over(what: str, found: int, limit: int, code: ErrorCode, node: object = None) -> OverLimit:
    return OverLimit(
        GraphQLError(
            f"The operation has {what} {found} or more; the limit is {limit}.",
            node if isinstance(node, FieldNode | OperationDefinitionNode) else None,
            extensions={"code": code, "limit": limit, "found": found},
        )
    )


class DocumentWalk:
    """Measures the operations of one document; `visited` counts the selection nodes read."""

    def __init__(self, document: DocumentNode, limits: Limits) -> None:
        self.limits = limits
        self.fragments: Mapping[str, FragmentDefinitionNode] = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.visited = 0
        self.comparisons = 0
        self._memo: dict[tuple[str, bool], Measure] = {}
        self._active: set[str] = set()

    def operation(self, node: OperationDefinitionNode) -> Measure:
        """The operation's measure; raises OverLimit at the first limit passed."""
        measured = self.selection_set(node.selection_set, False)
        directives = measured.directives + len(node.directives or ())
        self._check(measured._replace(directives=directives), node)
        return measured

    def selection_set(self, node: SelectionSetNode, introspection: bool) -> Measure:
        limits = self.limits
        if len(node.selections) > limits.selection_set:
            raise _over(
                "a selection set of", len(node.selections), limits.selection_set,
                ErrorCode.SELECTION_SET_LIMIT,
            )  # fmt: skip
        depth = idepth = aliases = directives = selections = roots = 0
        names: dict[str, tuple[int, int]] = {}
        spread: set[str] = set()
        for selection in node.selections:
            self.visited += 1
            directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                inner, own = self._field(selection, introspection)
                _merge(names, (selection.alias or selection.name).value, 1, 1 + inner.selections)
                aliases += selection.alias is not None
                selections += 1
                if own:  # an introspection root seen from the regular schema
                    depth = max(depth, 1)
                    idepth = max(idepth, 1 + inner.introspection_depth)
                    roots += 1
                elif introspection:
                    idepth = max(idepth, 1 + inner.introspection_depth)
                else:
                    depth = max(depth, 1 + inner.depth)
            elif isinstance(selection, InlineFragmentNode | FragmentSpreadNode):
                spread_measure = self._fragment(selection, introspection)
                if spread_measure is None:
                    continue
                inner = spread_measure
                depth = max(depth, inner.depth)
                idepth = max(idepth, inner.introspection_depth)
                # graphql-core compares a fragment spread twice in one set only once.
                key = selection.name.value if isinstance(selection, FragmentSpreadNode) else None
                if key is None or key not in spread:
                    spread.add(key or "")
                    for name, (count, size) in inner.names.items():
                        _merge(names, name, count, size)
            else:
                continue
            aliases += inner.aliases
            directives += inner.directives
            selections += inner.selections
            roots += inner.introspection_roots
            self._check(Measure(depth, idepth, aliases, directives, selections, roots, names))
        self._compare(names)
        return Measure(depth, idepth, aliases, directives, selections, roots, names)

    def _compare(self, names: dict[str, tuple[int, int]]) -> None:
        """Add the comparisons validation makes among fields sharing a response name: a pair of
        fields compares at most (size of one subtree) x (size of the other)."""
        self.comparisons += sum(size * size for count, size in names.values() if count > 1)
        if self.comparisons > self.limits.comparisons:
            raise _over(
                "field comparisons (fields sharing a response name):", self.comparisons,
                self.limits.comparisons, ErrorCode.SELECTION_SET_LIMIT,
            )  # fmt: skip

    def _field(self, node: FieldNode, introspection: bool) -> tuple[Measure, bool]:
        enters = not introspection and node.name.value in INTROSPECTION_ROOTS
        if node.selection_set is None:
            return _ZERO, enters
        return self.selection_set(node.selection_set, introspection or enters), enters

    def _fragment(
        self, node: InlineFragmentNode | FragmentSpreadNode, introspection: bool
    ) -> Measure | None:
        if isinstance(node, InlineFragmentNode):
            return self.selection_set(node.selection_set, introspection)
        name = node.name.value
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return None  # unknown fragments and cycles are validation's to report
        key = (name, introspection)
        known = self._memo.get(key)
        if known is None:
            self._active.add(name)
            try:
                known = self._memo[key] = self.selection_set(fragment.selection_set, introspection)
            finally:
                self._active.discard(name)
        return known

    def _check(self, m: Measure, node: object = None) -> None:
        limits = self.limits
        checks = (
            (m.selections, limits.selections, "field selections (fragments expanded):",
             ErrorCode.SELECTION_LIMIT),
            (m.depth, limits.depth, "a depth of", ErrorCode.DEPTH_LIMIT),
            (m.introspection_depth, limits.introspection_depth, "an introspection depth of",
             ErrorCode.INTROSPECTION_LIMIT),
            (m.introspection_roots, limits.introspection_roots, "introspection fields:",
             ErrorCode.INTROSPECTION_LIMIT),
            (m.aliases, limits.aliases, "aliases:", ErrorCode.ALIAS_LIMIT),
            (m.directives, limits.directives, "directives:", ErrorCode.DIRECTIVE_LIMIT),
        )  # fmt: skip
        for found, limit, what, code in checks:
            if found > limit:
                raise _over(what, found, limit, code, node)


def _merge(names: dict[str, tuple[int, int]], name: str, count: int, size: int) -> None:
    had = names.get(name, (0, 0))
    names[name] = (had[0] + count, had[1] + size)


_ZERO = Measure(0, 0, 0, 0, 0, 0, {})


def check_document(document: DocumentNode, limits: Limits) -> int:
    """Walk every operation of the document; the most field selections (fragments expanded)
    of any one of them, or OverLimit."""
    walk = DocumentWalk(document, limits)
    selections = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            selections = max(selections, walk.operation(definition).selections)
    return selections
