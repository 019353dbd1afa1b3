"""Compiled operations: a cached query projected straight from the upstream JSON to the response."""

from __future__ import annotations

import inspect
import keyword
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

import orjson
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    is_scalar_type,
    located_error,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails, collect_subfields
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import Undefined, gather_with_cancel

from gateway.bounded import remember
from resolvers.context import Context
from resolvers.plan import MAX_PLANS, OperationPlans, Plan, reads_variables, selections
from resolvers.planner import NO_SHAPE, ListShape
from resolvers.roots import Root
from schema import Read, read_of
from schema.scalars import ACCEPTED
from schema.types import DEFAULT_KEY, OBJECTS, PURE

logger = logging.getLogger("gateway.compiled")

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
# The most entries a dict literal holds in CPython's first table size (2/3 of 32 slots).
_LITERAL_ENTRIES = 21


# Which engine answered an operation, or why graphql-core ran it instead: a metric label and an
# access-log field, so a bounded set. `bailed`: a projector met a value that is not the plain
# case, and graphql-core reran the operation from the same loaders (no new upstream calls).
Engine = Literal["compiled", "graphql-core"]
Fallback = Literal[
    "disabled", "uncredentialed", "unsupported", "arguments", "directives", "bailed", "error"
]


class Unsupported(Exception):
    """The operation uses something the compiler does not project; graphql-core runs it."""


class _Bail(Exception):
    """A projector met anything but the plain case; graphql-core reruns the operation."""


_BAILED = object()  # a root field's value when its projector bailed


@dataclass(slots=True, eq=False)
class ObjectPlan:
    """The collected fields of one selection on an object type, in response order."""

    type: GraphQLObjectType
    fields: list[FieldPlan]
    # Python objects read by attribute, as the field that gives them declares (`OBJECTS`);
    # else upstream dicts.
    by_attribute: bool = False


@dataclass(slots=True, eq=False)
class FieldPlan:
    """One response key: how to read its value and how to complete it."""

    key: str
    name: str  # the schema field's name
    parent: str
    nodes: list[FieldNode]  # every merged node, for error locations
    type: GraphQLOutputType
    read: Read = Read.RESOLVER  # as graphql-core reads it (`schema.read_of`)
    python_name: str | None = None  # the key or attribute it is read by
    typename: str | None = None  # for __typename
    resolver: Callable[..., Any] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    sub: ObjectPlan | None = None
    # A resolver's answer read as its key's string, else null (`DEFAULT_KEY`): `python_name`.
    string_or_null: bool = False


@dataclass(slots=True, eq=False)
class RootPlan:
    field: FieldPlan
    definition: GraphQLField | None  # None for __typename
    complete: Callable[[Any], Any]  # the fast projection of the fetched value
    entry: Root | None = None  # the registry's entry: how the field fetches
    shape: ListShape = NO_SHAPE  # what its fetch reads of its selection, once per variant
    # Its argument values when the document spells them all out (no variable): read once.
    arguments: dict[str, Any] | None = None


# --- The fast path: one generated function per selection, plain dict reads and type checks. ---


class _Codegen:
    """Generates the projectors of one plan; `_Bail` (or any error) hands over to graphql-core.

    Only synthetic identifiers are generated: every name or value from the document or the
    schema reaches the generated source as a `repr` literal or through the namespace.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_Bail": _Bail, "_Undefined": Undefined}
        self.count = 0
        # The functions of each object plan, by its id: one each, however often called.
        self.functions: dict[int, str] = {}
        self.slows: dict[int, str] = {}

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"_{prefix}{self.count}"

    def bind(self, prefix: str, value: Any) -> str:
        name = self.fresh(prefix)
        self.namespace[name] = value
        return name

    def define(self, name: str, lines: list[str]) -> Callable[..., Any]:
        # Generated source is the cheapest projection CPython runs: straight-line reads and type
        # checks per field, with no per-field calls or dispatch on field kinds.
        exec(compile("\n".join(lines), f"<compiled {name}>", "exec"), self.namespace)
        function: Callable[..., Any] = self.namespace[name]
        return function

    def root(self, f: FieldPlan) -> Callable[[Any], Any]:
        name = self.fresh("root")
        return self.define(
            name, [f"def {name}(v):", *_indent(self.complete(f, f.type, "v")), "    return v"]
        )

    def object(self, plan: ObjectPlan) -> str:
        """The name of a function projecting one value of `plan` (a list's items call it)."""
        name = self.functions.get(id(plan))
        if name is None:
            name = self.functions[id(plan)] = self.fresh("object")
            lines = [f"def {name}(s):", *_indent(self.inline(plan, "s", "r")), "    return r"]
            self.define(name, lines)
        return name

    def inline(self, plan: ObjectPlan, src: str, dst: str) -> list[str]:
        """Lines that project the value in `src` into `dst`.

        An upstream dict nearly always has every key its selection reads: one `itemgetter`
        takes them all at C speed, and a missing key (a null, as graphql-core reads it) sends
        the value to the `.get` reads of `slow`, which project it exactly the same way.
        """
        if plan.by_attribute:
            head = [f"if type({src}) is dict: raise _Bail"]
            return head + self.fields(plan, src, dst, None, inline=True)
        keyed: list[tuple[str, str]] = []
        body = self.fields(plan, src, dst, keyed, inline=True)
        head = [f"if type({src}) is not dict: raise _Bail"]
        if not keyed:
            return head + body
        names = [name for _, name in keyed]
        if len(keyed) == 1:
            fetch = f"{keyed[0][0]} = {src}[{names[0]!r}]"
        else:
            getter = self.bind("get", itemgetter(*_decoded_keys(names)))
            fetch = f"{', '.join(var for var, _ in keyed)} = {getter}({src})"
        return [
            *head,
            "try:",
            f"    {fetch}",
            "except KeyError:",
            f"    {dst} = {self.slow(plan)}({src})",
            "else:",
            *_indent(body),
        ]

    def fields(
        self,
        plan: ObjectPlan,
        src: str,
        dst: str,
        keyed: list[tuple[str, str]] | None,
        *,
        inline: bool,
    ) -> list[str]:
        """The reads and completions of `plan`'s fields, then `dst` built from them. Key reads
        are left to the caller, named in `keyed` (variable, key), unless `keyed` is None. Objects
        below are projected `inline`, or by calling their function (code size stays linear)."""
        lines: list[str] = []
        entries: list[str] = []
        pairs: list[tuple[str, str]] = []
        for f in plan.fields:
            if f.typename is not None:
                entries.append(f"{f.key!r}: {f.typename!r}")
                pairs.append((f.key, repr(f.typename)))
                continue
            var = self.fresh("v")
            if keyed is not None and f.read is Read.KEY:
                assert f.python_name is not None
                keyed.append((var, f.python_name))
            else:
                lines.append(f"{var} = {self.read(f, plan.by_attribute, src)}")
            if f.string_or_null:
                # What the resolver answers: a String, which completes as itself, or null.
                lines.append(
                    f"if type({var}) is not str and not isinstance({var}, str): {var} = None"
                )
            else:
                lines += self.complete(f, f.type, var, inline=inline)
            entries.append(f"{f.key!r}: {var}")
            pairs.append((f.key, var))
        if len(entries) > _LITERAL_ENTRIES:
            # Past 21 entries a dict literal outgrows its first table and inserts at a cost:
            # copying a dict that has the keys and setting each value is ~20% cheaper.
            template = self.bind("template", dict.fromkeys(k for k, _ in pairs))
            lines.append(f"{dst} = {template}.copy()")
            lines += [f"{dst}[{k!r}] = {v}" for k, v in pairs]
        else:
            lines.append(f"{dst} = {{" + ", ".join(entries) + "}")
        return lines

    def slow(self, plan: ObjectPlan) -> str:
        """A function projecting a dict of `plan` that lacks a key: each field read by `.get`."""
        name = self.slows.get(id(plan))
        if name is None:
            name = self.slows[id(plan)] = self.fresh("slow")
            body = self.fields(plan, "s", "r", None, inline=False)
            lines = [f"def {name}(s):", "    g = s.get", *_indent(body)]
            self.define(name, [*lines, "    return r"])
        return name

    def read(self, f: FieldPlan, by_attribute: bool, src: str = "s") -> str:
        """The read of `f` from `src`, the object's value: the read graphql-core makes
        (`f.read`), inlined; the object's guard has made sure `src` is a dict (`g` is its
        `get`, bound where the dict is `s`) or is not."""
        if f.read is Read.RESOLVER:
            assert f.resolver is not None
            resolver = self.bind("resolver", f.resolver)
            passed = _beyond_defaults(f.resolver, f.kwargs)
            if not passed:
                return f"{resolver}({src})"  # ~170 ns less than unpacking the defaults again
            return f"{resolver}({src}, **{self.bind('kwargs', passed)})"
        name = f.python_name
        assert name is not None
        if f.read is not (Read.ATTRIBUTE if by_attribute else Read.KEY):
            raise Unsupported(f"{f.parent}.{f.name} is read unlike its object")
        if f.read is Read.KEY:
            return f"g({name!r})"  # dict.get
        if name.isidentifier() and not keyword.iskeyword(name):
            return f"{src}.{name}"  # getattr
        return f"getattr({src}, {name!r})"

    def complete(
        self, f: FieldPlan, type_: GraphQLOutputType, var: str, *, inline: bool = True
    ) -> list[str]:
        """Lines that turn `var` into its response value in place, or raise."""
        if is_non_null_type(type_):
            return self.complete_present(f, type_.of_type, var, non_null=True, inline=inline)
        nullable = self.complete_nullable(type_, var)
        if nullable is not None:
            return nullable
        lines = self.complete_present(f, type_, var, non_null=False, inline=inline)
        return [f"if {var} is not None:", *_indent(lines, 1)] if lines else []

    def complete_nullable(self, type_: GraphQLOutputType, var: str) -> list[str] | None:
        """The checks of a nullable leaf that test the usual value first, so that a present
        value costs one test, not a null test and then its own (a 50-item list has ~1,500);
        None where the general lines are needed."""
        if not is_scalar_type(type_) or type_.coerce_output_value is None:
            return None
        coerce = type_.coerce_output_value
        if coerce is GraphQLString.coerce_output_value:
            return [f"if type({var}) is not str and {var} is not None: raise _Bail"]
        if coerce is GraphQLBoolean.coerce_output_value:
            return [f"if type({var}) is not bool and {var} is not None: raise _Bail"]
        if coerce is GraphQLInt.coerce_output_value:
            return [
                f"if type({var}) is int:",
                f"    if not {_INT_MIN} <= {var} <= {_INT_MAX}: raise _Bail",
                f"elif {var} is not None: raise _Bail",
            ]
        accepted = ACCEPTED.get(coerce)
        if accepted is None:
            return None
        # The memo holds only strings: any other value is not in it and goes to the
        # serializer (an unhashable one raises, which bails as `_Bail` does).
        seen, name = self.bind("accepted", accepted.strings), self.bind("coerce", coerce)
        return [
            f"if {var} not in {seen} and {var} is not None:",
            f"    {var} = {name}({var})",
            f"    if {var} is None or {var} is _Undefined: raise _Bail",
        ]

    def complete_present(
        self, f: FieldPlan, type_: GraphQLOutputType, var: str, *, non_null: bool, inline: bool
    ) -> list[str]:
        """The completion of a value known not to be null, unless `non_null` (then null raises)."""
        if is_list_type(type_):
            item = type_.of_type
            item_non_null = is_non_null_type(item)
            named = item.of_type if item_non_null else item
            if not is_object_type(named) or f.sub is None:
                raise Unsupported(f"a list of {named}")
            check = f"if type({var}) is not list: raise _Bail"
            if inline:
                # A loop with the item's projection inline: no call per item.
                items, out, x = self.fresh("items"), self.fresh("out"), self.fresh("x")
                each = self.inline(f.sub, x, x)
                if not item_non_null:
                    each = [f"if {x} is not None:", *_indent(each)]
                loop = [f"for {x} in {items}:", *_indent(each), f"    {out}({x})"]
                return [check, f"{items} = {var}", f"{var} = []", f"{out} = {var}.append", *loop]
            project = self.object(f.sub)
            call = f"{project}(x)" if item_non_null else f"None if x is None else {project}(x)"
            return [check, f"{var} = [{call} for x in {var}]"]
        if is_object_type(type_):
            assert f.sub is not None
            # A null is not a dict: it bails.
            if inline:
                return self.inline(f.sub, var, var)
            return [f"{var} = {self.object(f.sub)}({var})"]
        if not is_scalar_type(type_) or type_.coerce_output_value is None:
            raise Unsupported(f"the type {type_}")
        coerce = type_.coerce_output_value
        if coerce is GraphQLString.coerce_output_value:
            return [f"if type({var}) is not str: raise _Bail"]
        if coerce is GraphQLBoolean.coerce_output_value:
            return [f"if type({var}) is not bool: raise _Bail"]
        if coerce is GraphQLInt.coerce_output_value:
            return [
                f"if type({var}) is not int or not {_INT_MIN} <= {var} <= {_INT_MAX}: raise _Bail"
            ]
        if coerce is GraphQLID.coerce_output_value:
            return [
                f"if type({var}) is int: {var} = str({var})",
                f"elif type({var}) is not str: raise _Bail",
            ]
        null_check = [f"if {var} is None: raise _Bail"] if non_null else []
        if _is_identity(coerce):
            return null_check  # JSON: the upstream value as it is
        name = self.bind("coerce", coerce)
        lines = [f"{var} = {name}({var})", f"if {var} is None or {var} is _Undefined: raise _Bail"]
        accepted = ACCEPTED.get(coerce)
        if accepted is not None:
            # The serializer's own memo, looked up inline: a string it accepted before is
            # answered as is (~40 ns less per value; a 50-item list has ~870 of them).
            seen = self.bind("accepted", accepted.strings)
            lines = [f"if type({var}) is not str or {var} not in {seen}:", *_indent(lines)]
        return [*null_check, *lines]


def _metadata(definition: GraphQLField) -> Mapping[Any, Any]:
    """What the Strawberry field behind `definition` declares in its `metadata`."""
    strawberry_field = (definition.extensions or {}).get("strawberry-definition")
    return strawberry_field.metadata if strawberry_field is not None else {}


def _indent(lines: list[str], levels: int = 1) -> list[str]:
    return [("    " * levels) + line for line in lines]


def _beyond_defaults(function: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of `kwargs` that differ from the defaults `function` declares for them:
    calling it without the others is the same call. Only immutable plain defaults count."""
    parameters = inspect.signature(function).parameters
    passed = {}
    for name, value in kwargs.items():
        parameter = parameters.get(name)
        default = inspect.Parameter.empty if parameter is None else parameter.default
        if not (type(value) is type(default) and type(value) in _PLAIN and value == default):
            passed[name] = value
    return passed


_PLAIN = (type(None), bool, int, str)


def _decoded_keys(names: list[str]) -> list[str]:
    """`names` as the str objects orjson gives the keys it decodes: it hands out one cached
    object per key, so a lookup with it matches by identity instead of comparing characters
    (an order item's 23 keys: ~700 -> ~300 ns). Any equal string finds the same values."""
    unique = list(dict.fromkeys(names))  # an alias may read a key twice
    decoded = dict(zip(unique, orjson.loads(orjson.dumps(dict.fromkeys(unique))), strict=True))
    return [decoded[name] for name in names]


def _is_identity(coerce: Callable[[Any], Any]) -> bool:
    probe = object()
    try:
        return coerce(probe) is probe
    except Exception:
        return False


# --- Planning: graphql-core's own field collection, once per variant. ---


@dataclass(slots=True)
class _Planner:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    operation: OperationDefinitionNode
    variables: VariableValues
    hide_suggestions: bool

    def field(
        self, parent: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> tuple[FieldPlan, GraphQLField]:
        first = details[0]
        name = first.node.name.value
        definition = self.schema.get_field(parent, name)
        if definition is None:
            raise Unsupported(f"the field {parent.name}.{name}")
        plan = FieldPlan(key, name, parent.name, [d.node for d in details], definition.type)
        if name == "__typename":
            plan.typename = parent.name
            return plan, definition
        if parent is not self.schema.query_type:
            self._reader(plan, definition, first)
        elif (definition.extensions or {}).get("strawberry-definition") is None or (
            definition.extensions["strawberry-definition"].extensions
        ):
            raise Unsupported(f"the root field {name}")
        named = get_named_type(definition.type)
        if is_object_type(named):
            if named.is_type_of is not None:
                raise Unsupported(f"is_type_of on {named.name}")
            collected = collect_subfields(
                self.schema,
                self.fragments,
                self.variables,
                self.operation,
                named,
                details,
                self.hide_suggestions,
            )
            if collected.new_defer_usages:
                raise Unsupported("@defer")
            plan.sub = ObjectPlan(
                named,
                [self.field(named, k, d)[0] for k, d in collected.grouped_field_set.items()],
                bool(_metadata(definition).get(OBJECTS)),
            )
        elif not is_leaf_type(named):
            raise Unsupported(f"the abstract type {named}")
        return plan, definition

    def _reader(self, plan: FieldPlan, definition: GraphQLField, first: FieldDetails) -> None:
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        if strawberry_field is None or strawberry_field.extensions:
            # Field extensions (permissions, say) wrap the resolver: only graphql-core runs them.
            raise Unsupported(f"the field {plan.parent}.{plan.name}")
        plan.read = read_of(strawberry_field)
        if plan.read is not Read.RESOLVER:
            plan.python_name = strawberry_field.python_name
            return
        resolver = strawberry_field.base_resolver
        assert resolver is not None
        function = resolver.wrapped_func
        if not strawberry_field.metadata.get(PURE):
            raise Unsupported(f"the resolver of {plan.parent}.{plan.name}")
        values = get_argument_values(
            definition,
            first.node,
            self.variables,
            first.fragment_variable_values,
            self.hide_suggestions,
        )
        plan.resolver = function
        plan.kwargs = {
            definition.args[name].extensions["strawberry-definition"].python_name: value
            for name, value in values.items()
        }
        key = strawberry_field.metadata.get(DEFAULT_KEY)
        if key is not None and not _beyond_defaults(function, plan.kwargs):
            # Its answer is the parent's string under `key`: read, not called (~1.3k fewer
            # instructions a state, 50 per nested list).
            plan.read, plan.python_name, plan.string_or_null = Read.KEY, key, True


@dataclass(slots=True, eq=False)
class _Variant:
    """The plan of an operation for one combination of the variables that shape it."""

    roots: list[RootPlan]
    hide_suggestions: bool
    # The one root field, when it is the only one and fetches with constant arguments (a
    # detail, a list): run without the lists and the gathering of several roots.
    single: RootPlan | None = None

    def __post_init__(self) -> None:
        if len(self.roots) == 1:
            root = self.roots[0]
            if root.entry is not None and root.arguments is not None:
                self.single = root

    async def execute(
        self, context: Context, variables: VariableValues
    ) -> ExecutionResult | Fallback:
        single = self.single
        if single is not None:  # what the general path below does for it
            errors: list[GraphQLError] = []
            try:
                value = await self._root(single, single.arguments or {}, context, errors)
            except GraphQLError as error:
                return ExecutionResult(None, [error])
            if value is _BAILED:
                return "bailed"
            return ExecutionResult({single.field.key: value}, errors or None)
        roots = self.roots
        arguments: list[dict[str, Any]] = []
        for root in roots:
            if root.definition is None:
                arguments.append({})
                continue
            if root.arguments is not None:
                arguments.append(root.arguments)
                continue
            try:
                arguments.append(
                    get_argument_values(
                        root.definition,
                        root.field.nodes[0],
                        variables,
                        None,
                        self.hide_suggestions,
                    )
                )
            except GraphQLError:
                return "arguments"  # graphql-core reports these its own way, before any call
        errors = []
        data: dict[str, Any] = {}
        pending: list[str] = []
        for root, args in zip(roots, arguments, strict=True):
            key = root.field.key
            if root.definition is None:
                data[key] = root.field.typename
            else:
                data[key] = self._root(root, args, context, errors)
                pending.append(key)
        try:
            # As graphql-core does: one awaitable is awaited as is, several are gathered, and the
            # first non-null root field to fail cancels the others and nulls the whole `data`.
            if len(pending) == 1:
                data[pending[0]] = await data[pending[0]]
            elif pending:
                values = await gather_with_cancel(*(data[key] for key in pending))
                data.update(zip(pending, values, strict=True))
        except GraphQLError as error:
            # No rerun: the fetches it cancelled would be new calls. (Every root field of this
            # schema is nullable, so this is for schemas to come.)
            errors.append(error)
            return ExecutionResult(None, errors)
        if any(data[key] is _BAILED for key in pending):
            # Every fetch has settled in the loaders, so graphql-core reruns the operation from
            # them without a new upstream call and completes the odd values as it always does.
            return "bailed"
        return ExecutionResult(data, errors or None)

    async def _root(
        self, root: RootPlan, args: dict[str, Any], context: Context, errors: list[GraphQLError]
    ) -> Any:
        f = root.field
        # The same entry, so the same calls in the same order, as the resolvers of `Query`.
        entry = root.entry
        assert entry is not None
        try:
            value = await entry.fetch(context, args, root.shape)
        except Exception as raw:
            error = located_error(raw, f.nodes, [f.key])
            if is_non_null_type(f.type):
                raise error from None
            errors.append(error)
            return None
        try:
            return root.complete(value)
        except Exception:
            return _BAILED


def _compile(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    variables: VariableValues,
    hide_suggestions: bool,
    plan: Plan,
) -> _Variant:
    """The variant of `plan`: its root fields, entries and list shapes are the plan's, the one
    the budget and graphql-core's resolvers read."""
    query_type = schema.query_type
    assert query_type is not None
    if plan.deferred:
        raise Unsupported("@defer")
    planner = _Planner(schema, plan.fragments, operation, variables, hide_suggestions)
    codegen = _Codegen()
    roots: list[RootPlan] = []
    for root in plan.roots:
        field_plan, definition = planner.field(query_type, root.key, root.details)
        if field_plan.typename is not None:
            roots.append(RootPlan(field_plan, None, _identity))
        elif root.entry is None:
            raise Unsupported(f"the root field {field_plan.name}")
        else:
            complete = codegen.root(field_plan)
            roots.append(
                RootPlan(
                    field_plan,
                    definition,
                    complete,
                    root.entry,
                    root.shape,
                    _constant_arguments(definition, field_plan.nodes[0], hide_suggestions),
                )
            )
    return _Variant(roots, hide_suggestions)


def _identity(value: Any) -> Any:
    return value


def _constant_arguments(
    definition: GraphQLField, node: FieldNode, hide_suggestions: bool
) -> dict[str, Any] | None:
    """The field's argument values if no variable feeds them (the fetches only read them), so
    a request need not coerce them again; else None, and each request coerces its own."""
    if reads_variables(node):
        return None
    try:
        return get_argument_values(definition, node, None, None, hide_suggestions)
    except GraphQLError:
        return None  # each request reports it, as graphql-core does


# --- The operation: a static verdict, then one compiled variant per shaping combination. ---


class CompiledOperation:
    """One operation of a cached document, compiled lazily per combination of shaping variables.

    Variables that only feed root-field arguments are read per request; those that decide
    `@skip`/`@include` or feed nested arguments (`State.name(locale:)`) select a variant.
    """

    def __init__(self, plans: OperationPlans) -> None:
        self.plans = plans  # the operation's plans, which the budget reads too
        self.supported = _statically_supported(plans.operation, plans.fragments)
        # Variants are keyed as plans are: by the values of the variables that shape them.
        self.shaping = plans.shaping
        # Why a variant could not be compiled, by its key: told again at each request it serves.
        self.variants: dict[tuple[Any, ...], _Variant | Fallback] = {}

    async def execute(
        self, context: Context, variables: VariableValues
    ) -> ExecutionResult | Fallback:
        """The compiled result, or why graphql-core must run this request."""
        runner = self.runner(variables)
        if isinstance(runner, str):
            return runner
        return await runner.execute(context, variables)

    def runner(self, variables: VariableValues) -> _Variant | Fallback:
        """The variant that runs these variables, or why graphql-core must."""
        if not self.supported:
            return "unsupported"
        return self.variant(variables)

    def variant(self, variables: VariableValues) -> _Variant | Fallback:
        if not self.shaping:  # one variant, under the empty key, once made
            made = self.variants.get(())
            if made is not None:
                return made
        # One variant per plan: the same shaping key and the same bound.
        return remember(
            self.variants, self.plans.key(variables), lambda: self._compile(variables), MAX_PLANS
        )

    def _compile(self, variables: VariableValues) -> _Variant | Fallback:
        plans = self.plans
        plan = plans.plan(variables)
        if plan.failed:
            return "directives"  # a null `if:`: graphql-core reports it exactly as it does
        try:
            return _compile(plans.schema, plans.operation, variables, plans.hide_suggestions, plan)
        except Unsupported:
            return "unsupported"
        except GraphQLError:
            # A null `if:` below the root; graphql-core reports it exactly as it does.
            return "directives"
        except Exception:  # a compiler bug must cost speed, never an answer
            logger.exception("could not compile an operation; graphql-core runs it")
            return "error"


def _statically_supported(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> bool:
    if operation.operation != OperationType.QUERY or operation.directives:
        return False
    selection_sets = [operation.selection_set, *(f.selection_set for f in fragments.values())]
    return not any(
        node.name.value in ("__schema", "__type") for node in _field_nodes(selection_sets)
    )


def _field_nodes(selection_sets: list[SelectionSetNode]) -> list[FieldNode]:
    return [
        s for selection_set in selection_sets for s in selections(selection_set)
        if isinstance(s, FieldNode)
    ]  # fmt: skip
