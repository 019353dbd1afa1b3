"""Document limits as validation rules: depth, aliases and directives, each with its own code.

The measure follows fragment spreads, so a fragment spread ten times counts ten times, and it
skips the introspection subtree, whose standard query is deeper than any limit an API would set
(graphql-core's MaxIntrospectionDepthRule bounds that subtree instead). Each fragment is measured
once per document and its measure reused at every spread, so a "fragment bomb" (fragments that
spread the next one many times) costs linear time to measure however large it expands. Since
every later walk over the selections (the call budget, the endpoint planner) follows each spread,
the depth rule also refuses a document whose selections, expanded, exceed `max_selections`
(`SELECTION_LIMIT`): without that, a 600-byte document could expand to millions of fields.
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
    selections: int = 0  # field selections with every fragment spread expanded


_ZERO = Measure(0, 0, 0, 0)


def measure(
    context: ValidationContext,
    selection_set: SelectionSetNode | None,
    active: frozenset[str] = frozenset(),
    memo: dict[str, Measure] | None = None,
) -> Measure:
    if selection_set is None:
        return _ZERO
    if memo is None:
        memo = {}
    depth = aliases = directives = selections = 0
    for selection in selection_set.selections:
        directives += len(selection.directives or ())
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            inner = measure(context, selection.selection_set, active, memo)
            depth = max(depth, 1 + inner.depth)
            aliases += inner.aliases + (selection.alias is not None)
            directives += inner.directives
            selections += 1 + inner.selections
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = measure(context, selection.selection_set, active, memo)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in active:  # cycles are NoFragmentCyclesRule's to report
                continue
            known = memo.get(name)
            if known is None:
                known = memo[name] = measure(context, fragment.selection_set, active | {name}, memo)
            inner = known
        else:
            continue
        depth = max(depth, inner.depth)
        aliases += inner.aliases
        directives += inner.directives
        selections += inner.selections
    return Measure(depth, aliases, directives, selections)


_Check = tuple[int, int, str, str]  # (index in Measure, limit, what, code)


def _rule(name: str, checks: list[_Check]) -> type[ASTValidationRule]:
    def enter_operation_definition(
        self: ASTValidationRule, node: OperationDefinitionNode, *_: Any
    ) -> None:
        measured = measure(self.context, node.selection_set)  # type: ignore[arg-type]
        for index, limit, what, code in checks:
            found = measured[index]
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
                return

    return type(
        name, (ASTValidationRule,), {"enter_operation_definition": enter_operation_definition}
    )


def max_depth(limit: int, max_selections: int) -> type[ASTValidationRule]:
    return _rule(
        "MaxDepthRule",
        [
            (3, max_selections, "field selections (fragments expanded):", "SELECTION_LIMIT"),
            (0, limit, "a depth of", "DEPTH_LIMIT"),
        ],
    )


def max_aliases(limit: int) -> type[ASTValidationRule]:
    return _rule("MaxAliasesRule", [(1, limit, "aliases:", "ALIAS_LIMIT")])


def max_directives(limit: int) -> type[ASTValidationRule]:
    return _rule("MaxDirectivesRule", [(2, limit, "directives:", "DIRECTIVE_LIMIT")])
