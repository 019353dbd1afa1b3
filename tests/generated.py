"""Generated operations: valid documents over the whole schema, for the differential and budget tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import get_named_type, is_object_type
from hypothesis import strategies as st

from resolvers.pagination import encode_cursor
from schema import make_schema


def _field_tables() -> dict[str, tuple[tuple[str, str | None, bool], ...]]:
    """Per object type: (field, object type it returns or None, takes `locale`), weighted."""
    schema = make_schema()._schema
    tables = {}
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name == "Query" or not is_object_type(type_):
            continue
        rows = []
        for field_name, definition in type_.fields.items():
            target = get_named_type(definition.type)
            row = (
                field_name,
                target.name if is_object_type(target) else None,
                bool(definition.args),
            )
            # Nested objects and arguments hold most of the semantics: draw them more often.
            rows += [row] * (3 if row[1] or row[2] else 1)
        tables[name] = tuple(rows)
    return tables


FIELDS = _field_tables()
ROOT_TYPES = {"orderItem": "OrderItem", "orderItems": "OrderItemConnection",
              "orderItemsByIds": "OrderItem"}  # fmt: skip
LOCALES = ["tr", "tr-tr", "TR_tr", "en", "en-US", "EN", "de", "", "tr-", "-tr"]
CURSORS = [encode_cursor(n) for n in (0, 3, 9, 18, 297, 299, 320)]
IDS: list[Any] = [1, 2, 3, 4, 6, 9, 12, 13, 16, 18, 60, 150, 299, 300, 999999, "07", "0"]
BAD_IDS = ["x", "-1", "1e3"]
SCENARIOS = ("clean", "detail_faults", "detail_faults", "list_faults", "mangled", "mangled")
FAULTS = ["500", "502", "503", "403", "404", "malformed", "truncated", "misshaped", "html"]


@dataclass
class Case:
    """One generated operation and the upstream it runs against."""

    scenario: str
    query: str
    variables: dict[str, Any]
    other_variables: dict[str, Any]  # the same document again with other values
    detail_faults: tuple[str, int, int] | None = None  # kind, for ids with id % m == r
    list_faults: dict[str, str] = field(default_factory=dict)
    falls_back: bool = False  # a null `if:` variable: graphql-core answers by design
    lists: frozenset[str] = frozenset()  # response keys of `orderItems` fields
    # Whether a projector may meet a value that is not the plain case (then graphql-core reruns
    # the operation): broken items, failing details, or a bad id in a list of ids.
    may_bail: bool = False
    bails: bool | None = None  # for the explicit examples: whether a projector must bail


class _Document:
    """Builds one valid operation.

    A response key always stands for one field with one set of arguments (anything else would
    not validate), so repeated keys and aliases merge, which is what the test wants.
    """

    def __init__(self, draw: st.DrawFn, max_lists: int, roots: list[str]) -> None:
        self.draw = draw
        self.max_lists = max_lists
        self.roots = roots
        self.keys: dict[str, dict[str, str]] = {}
        self.fragments: list[str] = []
        self.fragments_by_type: dict[str, list[str]] = {}
        self.definitions: dict[str, str] = {}
        self.options: dict[str, list[Any]] = {}
        self.variables: dict[str, Any] = {}
        self.booleans: list[str] = []
        self.lists: set[str] = set()
        self.falls_back = False
        self.bad_slots = False  # a bad id in `orderItemsByIds`: an error in a list slot

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) < p * 100  # floats would lean on 0

    def key(self, type_name: str, name: str, signature: str) -> str:
        table = self.keys.setdefault(type_name, {})
        wanted = self.pick([name, name, name, name, "a", "b", "c"])
        for candidate in (wanted, name, *(f"{name}{n}" for n in range(1, 100))):
            if table.setdefault(candidate, signature) == signature:
                return candidate
        raise AssertionError("no free response key")

    def variable(self, prefix: str, definition: str, options: list[Any]) -> str:
        """A new variable with a value drawn from `options` (`...` leaves it out)."""
        name = f"{prefix}{len(self.definitions)}"
        self.definitions[name] = definition
        self.options[name] = options
        value = self.pick(options)
        if value is not ...:
            self.variables[name] = value
        return f"${name}"

    def reassign(self) -> dict[str, Any]:
        """Other values for the same variables: another variant, or the same plan reused."""
        values = {name: self.pick(options) for name, options in self.options.items()}
        return {name: value for name, value in values.items() if value is not ...}

    def condition(self) -> str:
        kind = self.pick(["true", "false", "reuse", "required", "default", "null"])
        if kind in ("true", "false"):
            return kind
        if kind == "reuse" and self.booleans:
            return str(self.pick(self.booleans))
        if kind == "null" and self.chance(0.02):
            self.falls_back = True  # graphql-core fails collection on a null `if:`
            return self.variable("b", "Boolean = true", [None])
        if kind == "default":
            default = self.pick(["true", "false"])
            name = self.variable("b", f"Boolean = {default}", [..., True, False])
        else:
            name = self.variable("b", "Boolean!", [True, False])
        self.booleans.append(name)
        return name

    def directives(self) -> str:
        if not self.chance(0.15):
            return ""
        names = self.pick([["skip"], ["include"], ["skip", "include"], ["include", "skip"]])
        return "".join(f" @{name}(if: {self.condition()})" for name in names)

    def selection_set(self, type_name: str, nesting: int) -> str:
        count = self.draw(st.integers(1, 3 if type_name != "OrderItem" else 7))
        selections = [self.selection(type_name, nesting) for _ in range(count)]
        if type_name != "Query" and self.chance(0.1):
            # Every field of the type, as a client wanting everything writes it.
            rows = dict.fromkeys(FIELDS[type_name])
            selections += [self.field(type_name, row, nesting) for row in rows]
        return "{ " + " ".join(selections) + " }"

    def selection(self, type_name: str, nesting: int) -> str:
        kind = self.pick(["field"] * 6 + ["typename", "inline", "spread"])
        if kind == "typename":
            key = self.key(type_name, "__typename", "__typename")
            alias = "" if key == "__typename" else f"{key}: "
            return f"{alias}__typename{self.directives()}"
        if kind == "inline" and nesting < 3:
            condition = self.pick(["", f" on {type_name}"])
            return f"...{condition}{self.directives()} {self.selection_set(type_name, nesting + 1)}"
        if kind == "spread" and nesting < 3:
            known = self.fragments_by_type.get(type_name, [])
            if known and self.chance(0.5):
                name = self.pick(known)
            else:
                body = self.selection_set(type_name, nesting + 1)  # may define fragments first
                name = f"F{len(self.fragments)}"
                self.fragments.append(f"fragment {name} on {type_name} {body}")
                self.fragments_by_type.setdefault(type_name, []).append(name)
            return f"...{name}{self.directives()}"
        if type_name == "Query":
            return self.root_field(nesting)
        return self.field(type_name, self.pick(FIELDS[type_name]), nesting)

    def field(self, type_name: str, row: tuple[str, str | None, bool], nesting: int) -> str:
        name, target, takes_locale = row
        arguments = self.locale() if takes_locale else ""
        key = self.key(type_name, name, name + arguments)
        head = name if key == name else f"{key}: {name}"
        sub = "" if target is None else " " + self.selection_set(target, nesting)
        return f"{head}{arguments}{self.directives()}{sub}"

    def locale(self) -> str:
        kind = self.pick(["none", "literal", "literal", "null", "variable", "default"])
        if kind == "none":
            return ""
        if kind == "literal":
            return f"(locale: {orjson.dumps(self.pick(LOCALES)).decode()})"
        if kind == "null":
            return "(locale: null)"
        if kind == "default":
            default = orjson.dumps(self.pick(LOCALES)).decode()
            return f"(locale: {self.variable('l', f'String = {default}', [..., *LOCALES])})"
        return f"(locale: {self.variable('l', 'String', [..., None, *LOCALES])})"

    def root_field(self, nesting: int) -> str:
        name = self.pick(self.roots)
        if name == "orderItems" and len(self.lists) >= self.max_lists:
            name = "orderItem"
        arguments = getattr(self, f"_{name}_arguments")()
        key = self.key("Query", name, name + arguments)
        if name == "orderItems":
            self.lists.add(key)
        head = name if key == name else f"{key}: {name}"
        sub = self.selection_set(ROOT_TYPES[name], nesting)
        return f"{head}{arguments}{self.directives()} {sub}"

    def _id(self) -> str:
        if self.chance(0.2):
            return self.variable("i", "ID!", ["1", 5, "12", "0013", "x"])
        return orjson.dumps(self.pick(BAD_IDS if self.chance(0.05) else IDS)).decode()

    def _orderItem_arguments(self) -> str:
        return f"(id: {self._id()})"

    def _orderItemsByIds_arguments(self) -> str:
        ids = self.draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=5))
        if self.chance(0.05):
            ids.append(self.pick(BAD_IDS))
        self.bad_slots |= any(not str(i).isdigit() or int(i) < 1 for i in ids)
        if self.chance(0.2):
            return f"(ids: {self.variable('s', '[ID!]!', [ids, ids[::-1], ids[:1]])})"
        return f"(ids: {orjson.dumps(ids).decode()})"

    def _orderItems_arguments(self) -> str:
        choices = {  # (type, valid values, invalid values)
            "first": ("Int", [0, 1, 2, 5, 10, 25], [-1, 501]),
            "after": ("String", CURSORS, ["bogus", "b2k6eA=="]),
            "last": ("Int", [0, 1, 3, 25], [-1, 501]),
            "before": ("String", CURSORS, ["bogus", encode_cursor(3, "2021000002")]),
            "page": ("Int", [1, 2, 3, 15, 16], [0]),
            "pageSize": ("Int", [1, 5, 10, 20], [0]),
            "orderNumber": ("String", ["2021000002", "2021000010", "nope"], ["", "a\x00b"]),
        }
        parts = []
        for name, (type_name, valid, invalid) in choices.items():
            if not self.chance(0.3):
                continue
            bad = bool(invalid) and self.chance(0.1)
            value = self.pick(invalid if bad else valid)
            if self.chance(0.25):
                parts.append(f"{name}: {self.variable('v', type_name, [value] if bad else valid)}")
            else:
                parts.append(f"{name}: {orjson.dumps(value).decode()}")
        return f"({', '.join(parts)})" if parts else ""

    def text(self) -> str:
        body = self.selection_set("Query", 0)
        definitions = ", ".join(f"${n}: {d}" for n, d in self.definitions.items())
        head = f"query Generated({definitions}) " if definitions else "query Generated "
        return "\n".join([head + body, *self.fragments])


@st.composite
def cases(draw: st.DrawFn) -> Case:
    scenario = draw(st.sampled_from(SCENARIOS))
    # Where lists can fail after their upstream call, one list per operation keeps the outcome
    # deterministic (see `_comparable`); where items break, fetching them by id shows more.
    roots = ["orderItem", "orderItems", "orderItems", "orderItemsByIds"]
    if scenario in ("detail_faults", "mangled"):
        roots = ["orderItem", "orderItem", "orderItems", "orderItemsByIds", "orderItemsByIds"]
    document = _Document(draw, 1 if scenario in ("list_faults", "mangled") else 3, roots)
    query = document.text()
    case = Case(scenario, query, document.variables, document.reassign())
    case.falls_back = document.falls_back
    case.lists = frozenset(document.lists)
    case.may_bail = scenario in ("detail_faults", "mangled") or document.bad_slots
    if scenario == "detail_faults":
        kind, modulus = draw(st.sampled_from(FAULTS)), draw(st.integers(2, 4))
        remainder = draw(st.integers(0, modulus - 1))
        case.detail_faults = (kind, modulus, remainder)
    elif scenario == "list_faults":
        kind = draw(st.sampled_from(FAULTS))
        endpoints = draw(st.sampled_from([["list"], ["list-simple"], ["list", "list-simple"]]))
        case.list_faults = {endpoint: kind for endpoint in endpoints}
    return case
