"""Operation execution: cached parse and validation, the call budget, compiled or graphql-core."""

from __future__ import annotations

import inspect
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_variable_values,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule

from gateway.compiled import CompiledOperation
from gateway.limits import max_aliases, max_depth, max_directives
from gateway.settings import Settings
from resolvers.cost import upstream_calls


class RequestError(Exception):
    """The request fails before execution: answered with `errors` and no `data`."""

    def __init__(self, errors: list[GraphQLError], status: int = 400) -> None:
        super().__init__(errors[0].message if errors else "request error")
        self.errors = errors
        self.status = status


def request_error(message: str, code: str, status: int = 400, **extra: Any) -> RequestError:
    return RequestError([GraphQLError(message, extensions={"code": code, **extra})], status)


@dataclass(slots=True)
class Prepared:
    """A parsed document and its validation outcome, cached by its text."""

    document: DocumentNode
    fragments: dict[str, FragmentDefinitionNode]
    operations: dict[str | None, OperationDefinitionNode]
    invalid: RequestError | None = None  # the validation errors, when there are any
    extras: dict[Any, Any] = field(default_factory=dict)  # per-document caches of later stages
    timings: tuple[float, float] = (0.0, 0.0)  # seconds to parse and to validate it

    def find(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation `name` selects, or None when there is no such single operation."""
        if name is None:
            return next(iter(self.operations.values())) if len(self.operations) == 1 else None
        return self.operations.get(name)

    def operation(self, name: str | None) -> OperationDefinitionNode:
        operation = self.find(name)
        if operation is not None:
            return operation
        if name is None:
            raise request_error(
                "The document has several operations: give `operationName`.", "BAD_REQUEST"
            )
        raise request_error(f"No operation named {name!r} in the document.", "BAD_REQUEST")


def _prepare(query: str, schema: GraphQLSchema, settings: Settings, rules: Any) -> Prepared:
    started = time.perf_counter()
    try:
        document = parse(query, max_tokens=settings.max_tokens)
    except GraphQLError as syntax_error:
        if "tokens" in syntax_error.message and "more than" in syntax_error.message:
            syntax_error.extensions = {"code": "TOKEN_LIMIT", "limit": settings.max_tokens}
        else:
            syntax_error.extensions = {"code": "GRAPHQL_PARSE_FAILED"}
        raise RequestError([syntax_error]) from None
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: dict[str | None, OperationDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = definition
        elif isinstance(definition, OperationDefinitionNode):
            operations[definition.name.value if definition.name else None] = definition
    prepared = Prepared(document, fragments, operations)
    parsed = time.perf_counter()
    errors = validate(schema, document, rules, hide_suggestions=settings.production)
    prepared.timings = (parsed - started, time.perf_counter() - parsed)
    if errors:
        for error in errors:
            if not error.extensions:
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED"}
        prepared.invalid = RequestError(errors)
    return prepared


class Executor:
    """Runs operations against one schema with one app's settings."""

    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        rules: list[type[ASTValidationRule]] = [
            *specified_rules,
            max_depth(settings.max_depth, settings.max_selections),
            max_aliases(settings.max_aliases),
            max_directives(settings.max_directives),
        ]
        if settings.production:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules = rules
        self._cache: OrderedDict[str, Prepared | RequestError] = OrderedDict()
        # Told how long parse and validation took, for each document actually parsed.
        self.on_phase: Callable[[str, float], None] | None = None

    def prepare(self, query: str) -> Prepared:
        """The valid document `query`; raises its syntax or validation errors."""
        prepared = self.parse(query)
        if prepared.invalid is not None:
            raise prepared.invalid
        return prepared

    def parse(self, query: str) -> Prepared:
        """Parse and validate once per distinct document; raises only syntax errors.

        Validation errors stay on the result, so that a caller can first refuse what the
        transport forbids (a mutation over GET is 405 even when the document is also invalid).
        """
        cached = self._cache.get(query)
        if cached is None:
            try:
                cached = _prepare(query, self.schema, self.settings, self.rules)
            except RequestError as error:
                cached = error
            if isinstance(cached, Prepared) and self.on_phase is not None:
                self.on_phase("parse", cached.timings[0])
                self.on_phase("validate", cached.timings[1])
            self._cache[query] = cached
            if len(self._cache) > self.settings.document_cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(query)
        if isinstance(cached, RequestError):
            raise cached
        return cached

    def coerce_variables(
        self, operation: OperationDefinitionNode, variables: dict[str, Any] | None
    ) -> Any:
        coerced = get_variable_values(
            self.schema,
            operation.variable_definitions or (),
            variables or {},
            max_errors=10,
            hide_suggestions=self.settings.production,
        )
        if isinstance(coerced, list):
            for error in coerced:
                error.extensions = {"code": "BAD_USER_INPUT"}
            raise RequestError(coerced)
        return coerced

    def check_budget(
        self, prepared: Prepared, operation: OperationDefinitionNode, variables: Any
    ) -> int:
        cost = upstream_calls(self.schema, operation, prepared.fragments, variables, self.settings)
        budget = self.settings.max_upstream_calls
        if cost > budget:
            raise request_error(
                f"The operation would make {cost} upstream calls; the budget is {budget}. "
                "Ask for fewer items or ids per operation.",
                "COST_LIMIT",
                cost=cost,
                budget=budget,
            )
        return cost

    def compiled(self, prepared: Prepared, operation: OperationDefinitionNode) -> CompiledOperation:
        """The operation's compiled form, made once per cached document."""
        key = (CompiledOperation, operation.name.value if operation.name else None)
        compiled = prepared.extras.get(key)
        if compiled is None:
            compiled = prepared.extras[key] = CompiledOperation(
                self.schema,
                prepared.fragments,
                operation,
                hide_suggestions=self.settings.production,
            )
        assert isinstance(compiled, CompiledOperation)
        return compiled

    async def execute(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        context: Any,
    ) -> ExecutionResult:
        coerced = self.coerce_variables(operation, variables)
        self.check_budget(prepared, operation, coerced)
        if self.settings.compile_operations:
            compiled = await self.compiled(prepared, operation).execute(context, coerced)
            if compiled is not None:
                return compiled
        result = execute(
            self.schema,
            prepared.document,
            context_value=context,
            variable_values=variables or {},
            operation_name=operation.name.value if operation.name else None,
            hide_suggestions=self.settings.production,
        )
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        return result


def is_query(operation: OperationDefinitionNode) -> bool:
    return operation.operation == OperationType.QUERY
