"""Document limits as validation rules: depth, aliases and directives, each with its own code.

The measure follows fragment spreads, so a fragment spread ten times counts ten times, and it
skips the introspection subtree, whose standard query is deeper than any limit an API would set.
Validation results are cached per document, so this walk runs once per distinct document.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)


class Measure(NamedTuple):
    depth: int
    aliases: int
    directives: int


_ZERO = Measure(0, 0, 0)


def measure(
    context: ValidationContext,
    selection_set: SelectionSetNode | None,
    active: frozenset[str] = frozenset(),
) -> Measure:
    if selection_set is None:
        return _ZERO
    depth = aliases = directives = 0
    for selection in selection_set.selections:
        directives += len(selection.directives or ())
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            inner = measure(context, selection.selection_set, active)
            depth = max(depth, 1 + inner.depth)
            aliases += inner.aliases + (selection.alias is not None)
            directives += inner.directives
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = measure(context, selection.selection_set, active)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in active:  # cycles are NoFragmentCyclesRule's to report
                continue
            inner = measure(context, fragment.selection_set, active | {name})
        else:
            continue
        depth = max(depth, inner.depth)
        aliases += inner.aliases
        directives += inner.directives
    return Measure(depth, aliases, directives)


def _rule(name: str, index: int, limit: int, what: str, code: str) -> type[ASTValidationRule]:
    def enter_operation_definition(
        self: ASTValidationRule, node: OperationDefinitionNode, *_: Any
    ) -> None:
        found = measure(self.context, node.selection_set)[index]  # type: ignore[arg-type]
        if index == 2:
            found += len(node.directives or ())
        if found > limit:
            self.report_error(
                GraphQLError(
                    f"The operation has {what} {found}; the limit is {limit}.",
                    node,
                    extensions={"code": code, "limit": limit, "found": found},
                )
            )

    return type(
        name, (ASTValidationRule,), {"enter_operation_definition": enter_operation_definition}
    )


def max_depth(limit: int) -> type[ASTValidationRule]:
    return _rule("MaxDepthRule", 0, limit, "a depth of", "DEPTH_LIMIT")


def max_aliases(limit: int) -> type[ASTValidationRule]:
    return _rule("MaxAliasesRule", 1, limit, "aliases:", "ALIAS_LIMIT")


def max_directives(limit: int) -> type[ASTValidationRule]:
    return _rule("MaxDirectivesRule", 2, limit, "directives:", "DIRECTIVE_LIMIT")
