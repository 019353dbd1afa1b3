"""Operation execution: cached parse and validation, the call budget, compiled or graphql-core."""

from __future__ import annotations

import inspect
import time
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
from graphql.execution.values import VariableValues
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule

from gateway.bounded import ByteLRU, remember
from gateway.errors import ErrorCode, RequestError, request_error
from gateway.execution.compiled import CompiledOperation, Engine, Fallback, _Variant
from gateway.execution.limits import Limits, OverLimit, check_document
from gateway.settings import Settings
from resolvers.cost import plan_cost
from resolvers.plan import OperationPlans, Plan


class Answer(ExecutionResult):
    """An operation's result with the engine that made it, and why graphql-core ran it when
    the compiled path could not (None when it did not try or did answer)."""

    __slots__ = ("engine", "fallback")

    def __init__(
        self, result: ExecutionResult, engine: Engine, fallback: Fallback | None = None
    ) -> None:
        # ExecutionResult's three fields, set here rather than through its __init__.
        self.data = result.data
        self.errors = result.errors
        self.extensions = result.extensions
        self.engine = engine
        self.fallback = fallback


@dataclass(frozen=True, slots=True)
class ErrorData:
    """One cached error as plain data: a fresh GraphQLError is built from it per request, so a
    cached failure never carries the traceback (and the frames) of the request that made it."""

    message: str
    extensions: dict[str, Any]
    locations: tuple[Any, ...] | None

    @classmethod
    def of(cls, error: GraphQLError) -> ErrorData:
        locations = tuple(error.locations) if error.locations else None
        return cls(error.message, dict(error.extensions or {}), locations)

    def error(self) -> GraphQLError:
        error = GraphQLError(self.message, extensions=dict(self.extensions))
        error.locations = list(self.locations) if self.locations else None
        return error


@dataclass(frozen=True, slots=True)
class Failure:
    """A document that fails before execution, kept as data: its errors, and each operation's
    kind (GET answers 405 for a mutation before it reports validation errors)."""

    errors: tuple[ErrorData, ...]
    kinds: dict[str | None, OperationType] = field(default_factory=dict)
    status: int = 400
    timings: tuple[float, float] | None = None  # parse and validate seconds, when it validated

    @classmethod
    def of(
        cls,
        errors: list[GraphQLError],
        kinds: dict[str | None, OperationType],
        timings: tuple[float, float] | None = None,
    ) -> Failure:
        return cls(tuple(ErrorData.of(e) for e in errors), kinds, timings=timings)

    def kind(self, name: str | None) -> OperationType | None:
        return _select(self.kinds, name)

    def request_error(self) -> RequestError:
        return RequestError([e.error() for e in self.errors], self.status)


def _select(operations: dict[str | None, Any], name: str | None) -> Any:
    if name is None:
        return next(iter(operations.values())) if len(operations) == 1 else None
    return operations.get(name)


@dataclass(slots=True, eq=False)
class Fixed:
    """What an operation that defines no variables gets at one page cap, read without the
    keys of the tables that keep each (the budget's figures, the plans, the variants)."""

    max_limit: int | None
    cost: int
    plan: Plan
    runner: _Variant | Fallback | None = None  # the compiled variant, once one ran


@dataclass(slots=True)
class Prepared:
    """A parsed, measured and valid document, cached by its text."""

    document: DocumentNode
    fragments: dict[str, FragmentDefinitionNode]
    operations: dict[str | None, OperationDefinitionNode]
    extras: dict[Any, Any] = field(default_factory=dict)  # per-document caches of later stages
    plans: dict[str | None, OperationPlans] = field(default_factory=dict)  # by operation name
    # What an operation without variables gets at the page cap it last ran at, by its name.
    fixed: dict[str | None, Fixed] = field(default_factory=dict)
    nbytes: int = 0  # what the document cache charges for it when cached
    query: str = ""  # its text, the document cache's key
    selections: int = 0  # the most field selections of one operation, fragments expanded
    timings: tuple[float, float] = (0.0, 0.0)  # seconds to parse and to validate it

    def find(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation `name` selects, or None when there is no such single operation."""
        found: OperationDefinitionNode | None = _select(self.operations, name)
        return found

    def kind(self, name: str | None) -> OperationType | None:
        operation = self.find(name)
        return operation.operation if operation is not None else None

    def operation(self, name: str | None) -> OperationDefinitionNode:
        if name is None and len(self.operations) == 1:  # the usual document: `find`, inline
            for sole in self.operations.values():
                return sole
        operation = self.find(name)
        if operation is not None:
            return operation
        if name is None:
            raise request_error(
                "The document has several operations: give `operationName`.", ErrorCode.BAD_REQUEST
            )
        raise request_error(f"No operation named {name!r} in the document.", ErrorCode.BAD_REQUEST)


# What the document cache charges, from tracemalloc (bench/governance.py memory): a parsed and
# validated document keeps 74 to 160 bytes per byte of its text (tokens, nodes, locations); a
# compiled variant about 550 to 800 bytes per field selection with fragments expanded; a plan
# 680 to 860 bytes and about 240 more per root field (measured alike on bench's documents);
# a budget figure its key of variable values.
DOCUMENT_BYTES = 16 * 1024
DOCUMENT_BYTES_PER_BYTE = 100
VARIANT_BYTES = 12 * 1024
VARIANT_BYTES_PER_SELECTION = 600
PLAN_BYTES = 1024
PLAN_BYTES_PER_ROOT = 256
FIGURE_BYTES = 256
# Budget figures kept per operation, by the variables' values and the page cap.
MAX_FIGURES = 32


def _prepare(
    query: str, schema: GraphQLSchema, settings: Settings, rules: Any, limits: Limits
) -> Prepared | Failure:
    started = time.perf_counter()
    try:
        document = parse(query, max_tokens=settings.max_tokens)
    except GraphQLError as syntax_error:
        if "tokens" in syntax_error.message and "more than" in syntax_error.message:
            extensions = {"code": ErrorCode.TOKEN_LIMIT, "limit": settings.max_tokens}
        else:
            extensions = {"code": ErrorCode.GRAPHQL_PARSE_FAILED}
        syntax_error.extensions = extensions
        return Failure.of([syntax_error], {})
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: dict[str | None, OperationDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments[definition.name.value] = definition
        elif isinstance(definition, OperationDefinitionNode):
            operations[definition.name.value if definition.name else None] = definition
    kinds = {name: operation.operation for name, operation in operations.items()}
    parsed = time.perf_counter()
    try:
        # Before validation: validation then only meets documents whose size it can afford.
        selections = check_document(document, limits)
    except OverLimit as over:
        return Failure.of([over.error], kinds)
    errors = validate(schema, document, rules, hide_suggestions=settings.production)
    timings = (parsed - started, time.perf_counter() - parsed)
    if errors:
        for error in errors:
            if not error.extensions:
                error.extensions = {"code": ErrorCode.GRAPHQL_VALIDATION_FAILED}
        return Failure.of(errors, kinds, timings)
    nbytes = DOCUMENT_BYTES + len(query.encode()) * DOCUMENT_BYTES_PER_BYTE
    return Prepared(
        document,
        fragments,
        operations,
        nbytes=nbytes,
        query=query,
        selections=selections,
        timings=timings,
    )


class Executor:
    """Runs operations against one schema with one app's settings."""

    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.schema = schema
        self.settings = settings
        self.limits = Limits.of(settings)
        rules: list[type[ASTValidationRule]] = list(specified_rules)
        if settings.production:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules = rules
        self.cache: ByteLRU[Prepared | Failure] = ByteLRU(
            settings.document_cache_bytes, settings.document_cache_size
        )
        # Told how long parse and validation took, for each document actually parsed.
        self.on_phase: Callable[[str, float], None] | None = None

    def prepare(self, query: str, *, cache: bool = True) -> Prepared:
        """The valid document `query`; raises its syntax, limit or validation errors."""
        return self.valid(self.parse(query, cache=cache))

    @staticmethod
    def valid(parsed: Prepared | Failure) -> Prepared:
        if isinstance(parsed, Failure):
            raise parsed.request_error()
        return parsed

    def parse(self, query: str, *, cache: bool = True) -> Prepared | Failure:
        """Parse, measure and validate once per distinct document (when `cache`).

        A failure is returned as data rather than raised, so that a caller can first refuse
        what the transport forbids (a mutation over GET is 405 even when it is also invalid).
        """
        cached = self.cache.get(query)
        if cached is None:
            cached = _prepare(query, self.schema, self.settings, self.rules, self.limits)
            if cached.timings is not None and self.on_phase is not None:
                self.on_phase("parse", cached.timings[0])
                self.on_phase("validate", cached.timings[1])
            if cache:
                self.cache.put(query, cached, _charge(query, cached))
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
                error.extensions = {"code": ErrorCode.BAD_USER_INPUT}
            raise RequestError(coerced)
        return coerced

    def check_budget(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: Any,
        max_limit: int | None = None,
    ) -> int:
        """The operation's planned upstream calls (at page cap `max_limit`), within budget."""
        cost = self.planned_calls(prepared, operation, variables, max_limit)
        self._within_budget(cost)
        return cost

    def _within_budget(self, cost: int) -> None:
        budget = self.settings.max_upstream_calls
        if cost > budget:
            raise request_error(
                f"The operation would make {cost} upstream calls; the budget is {budget}. "
                "Ask for fewer items or ids per operation.",
                ErrorCode.COST_LIMIT,
                cost=cost,
                budget=budget,
            )

    def planned_calls(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: Any,
        max_limit: int | None,
    ) -> int:
        """The budget's figure, once per combination of the variables' values and the page cap:
        it reads nothing else (they select the plan and give the root fields' arguments)."""
        figures = self.plans(prepared, operation).calls
        kept = len(figures)
        calls = remember(
            figures,
            (tuple(variables.coerced.items()), max_limit),
            lambda: (
                plan_cost(
                    self.plan(prepared, operation, variables), variables, self.settings, max_limit
                ).calls
            ),
            MAX_FIGURES,
        )
        if len(figures) > kept:
            self.cache.charge(prepared.query, FIGURE_BYTES)
        return calls

    def plans(self, prepared: Prepared, operation: OperationDefinitionNode) -> OperationPlans:
        """The operation's plans, kept with the cached document."""
        name = operation.name.value if operation.name else None
        plans = prepared.plans.get(name)
        if plans is None:
            plans = prepared.plans[name] = OperationPlans(
                self.schema,
                prepared.fragments,
                operation,
                hide_suggestions=self.settings.production,
            )
        return plans

    def plan(self, prepared: Prepared, operation: OperationDefinitionNode, variables: Any) -> Plan:
        """The plan the budget, the compiled path and the resolvers read for these variables."""
        plans = self.plans(prepared, operation)
        count = len(plans.plans)
        plan = plans.plan(variables)
        if len(plans.plans) > count:
            self.cache.charge(prepared.query, PLAN_BYTES + len(plan.roots) * PLAN_BYTES_PER_ROOT)
        return plan

    def compiled(self, prepared: Prepared, operation: OperationDefinitionNode) -> CompiledOperation:
        """The operation's compiled form, made once per cached document."""
        key = (CompiledOperation, operation.name.value if operation.name else None)
        compiled = prepared.extras.get(key)
        if compiled is None:
            compiled = prepared.extras[key] = CompiledOperation(self.plans(prepared, operation))
        assert isinstance(compiled, CompiledOperation)
        return compiled

    async def execute(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        context: Any,
        *,
        compile: bool = True,
    ) -> Answer:
        """Run the operation; `compile=False` (a request without credentials) compiles nothing."""
        max_limit = context.list_limit()
        fixed: Fixed | None = None
        if operation.variable_definitions:
            coerced = self.coerce_variables(operation, variables)
            cost = self.check_budget(prepared, operation, coerced, max_limit)
            context.plan = self.plan(prepared, operation, coerced)  # made by the budget's check
        else:
            # No variable defined: any input coerces to none (as graphql-core's coercion
            # answers), and the budget's figure and the plan depend on the page cap alone.
            coerced = VariableValues({}, {})
            name = operation.name.value if operation.name else None
            fixed = prepared.fixed.get(name)
            if fixed is None or fixed.max_limit != max_limit:
                cost = self.check_budget(prepared, operation, coerced, max_limit)
                plan = self.plan(prepared, operation, coerced)
                fixed = prepared.fixed[name] = Fixed(max_limit, cost, plan)
            else:
                cost = fixed.cost
                self._within_budget(cost)
            context.plan = fixed.plan
        # The compiled path inline (a coroutine less per operation); else graphql-core.
        result: Answer | None = None
        fallback: Fallback = "disabled"
        if not compile:
            fallback = "uncredentialed"
        elif self.settings.compile_operations:
            runner = fixed.runner if fixed is not None else None
            if runner is None:
                compiled = self.compiled(prepared, operation)
                variants = len(compiled.variants)
                runner = compiled.runner(coerced)
                if len(compiled.variants) > variants:
                    # A variant's plans and generated code grow with the expanded selections.
                    variant = VARIANT_BYTES + prepared.selections * VARIANT_BYTES_PER_SELECTION
                    self.cache.charge(prepared.query, variant)
                if fixed is not None:
                    fixed.runner = runner  # kept in `compiled` too; the same every time
            outcome = runner if isinstance(runner, str) else await runner.execute(context, coerced)
            if isinstance(outcome, str):
                fallback = outcome
            else:
                result = Answer(outcome, "compiled")
        if result is None:
            result = await self._graphql_core(prepared, operation, variables, context, fallback)
        if self.settings.expose_cost:
            result.extensions = {"cost": self.cost_report(context.session.calls, cost)}
        return result

    def cost_report(self, calls: dict[str, int], estimated: int) -> dict[str, int]:
        """`extensions.cost`, as Apollo Router's demand control reports it (actual, estimate)."""
        return {
            "upstreamCalls": sum(calls.values()),
            "estimated": estimated,
            "budget": self.settings.max_upstream_calls,
        }

    async def _graphql_core(
        self,
        prepared: Prepared,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        context: Any,
        fallback: Fallback,
    ) -> Answer:
        # On `bailed`, the same context: its loaders hold every answer the compiled run fetched.
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
        return Answer(result, "graphql-core", fallback)


def _charge(query: str, parsed: Prepared | Failure) -> int:
    """The bytes the document cache charges an entry (see DOCUMENT_BYTES_PER_BYTE)."""
    if isinstance(parsed, Prepared):
        return parsed.nbytes
    return len(query) + sum(256 + len(e.message) for e in parsed.errors)
