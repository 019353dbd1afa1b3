"""A generic GraphQL gateway (GraphQL Mesh composed, served by Hive Gateway) over the fake OMS.

`bench/floor.py --generic` measures it beside ours, in the same run, against the same fake OMS,
with the same wrk settings. Its Node packages are pinned in bench/generic/package.json and
package-lock.json; `npm ci` brings them when node and npm are present (Debian: `apt-get install
nodejs npm`). The JSON Schema Mesh types the REST answers with is derived here from the fake's
own data, so no field list is copied by hand; paths and token come from the gateway's constants.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    parse,
    print_ast,
)
from harness import HOST, Servers
from queries import case_by_key

from gateway.fake_upstream.data import make_items
from gateway.settings import DEMO_TOKEN
from gateway.upstream.client import DETAIL_PATH, LIST_PATH

GENERIC_DIR = Path(__file__).resolve().parent / "generic"
BUILD = GENERIC_DIR / "build"  # composed artefacts (gitignored)
BIN = GENERIC_DIR / "node_modules" / ".bin"
PACKAGES = ("@graphql-hive/gateway", "@graphql-mesh/compose-cli", "@omnigraph/json-schema")

INSTALL_HINT = (
    "the generic gateway needs Node.js 20+ and npm: `apt-get install nodejs npm`, then "
    "`npm ci --prefix bench/generic`"
)


class NodeMissing(RuntimeError):
    """node or npm is not installed; nothing is installed silently."""


# --- the JSON Schema of the OMS's answers, derived from the fake's data ----------------------

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def _title(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_"))


def schema_of(values: list[Any], title: str) -> dict[str, Any]:
    """The JSON Schema a Mesh user would write for a field holding these `values`.

    An object whose keys are the same, non-empty and valid GraphQL names in every sample becomes
    a type with those fields; any other object (free-form, such as `attributes`) is left
    untyped, which Mesh serves as its `JSON` scalar. Nothing is required: every field is
    nullable, as a field seen as null in some samples must be.
    """
    present = [v for v in values if v is not None]
    if not present:
        return {}
    if all(isinstance(v, dict) for v in present):
        first = list(present[0])
        same = all(v.keys() == present[0].keys() for v in present)
        if not same or not first or not all(_NAME.match(k) for k in first):
            return {"type": "object", "additionalProperties": True}
        props = {k: schema_of([v[k] for v in present], _title(k)) for k in first}
        return {"type": "object", "title": title, "properties": props}
    if all(isinstance(v, list) for v in present):
        return {"type": "array", "items": schema_of([x for v in present for x in v], title)}
    kinds = {type(v) for v in present}
    if kinds <= {int}:
        return {"type": "integer"}
    if kinds <= {int, float}:
        return {"type": "number"}
    if kinds <= {bool}:
        return {"type": "boolean"}
    if kinds <= {str}:
        return {"type": "string"}
    return {}


def oms_schema() -> dict[str, Any]:
    """OrderItem (the detail and each list result) and OrderItemPage (a page of the list)."""
    item = schema_of(make_items(), "OrderItem")
    page = {
        "type": "object",
        "title": "OrderItemPage",
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": "string"},
            "previous": {"type": "string"},
            "results": {"type": "array", "items": {"$ref": "#/definitions/OrderItem"}},
        },
    }
    return {"definitions": {"OrderItem": item, "OrderItemPage": page}}


# --- node, npm and the composed supergraph ---------------------------------------------------


def ensure_node() -> None:
    """node_modules from package-lock.json (`npm ci`) when node is there; else say how."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise NodeMissing(INSTALL_HINT)
    if all((GENERIC_DIR / "node_modules" / p / "package.json").exists() for p in PACKAGES):
        return
    print("bench/generic: npm ci (the pinned Mesh and Hive Gateway packages)", flush=True)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(GENERIC_DIR)],
        timeout=900,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise NodeMissing(f"npm ci failed: {done.stderr.strip()[-500:]}; {INSTALL_HINT}")


def versions() -> dict[str, str]:
    """The installed versions of the packages that make the generic gateway, and node's."""
    out = {"node": subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30
    ).stdout.strip()}  # fmt: skip
    for p in (*PACKAGES, "graphql"):
        meta = json.loads((GENERIC_DIR / "node_modules" / p / "package.json").read_text())
        out[p] = meta["version"]
    return out


def compose() -> Path:
    """Write the JSON Schema and compose the supergraph Hive Gateway serves; its path."""
    BUILD.mkdir(parents=True, exist_ok=True)
    schema = BUILD / "oms.schema.json"
    schema.write_text(json.dumps(oms_schema(), indent=1))
    out = BUILD / "supergraph.graphql"
    env = {
        **os.environ,
        "GENERIC_OMS_SCHEMA": str(schema),
        "GENERIC_OMS_DETAIL_PATH": DETAIL_PATH,
        "GENERIC_OMS_LIST_PATH": LIST_PATH,
    }
    done = subprocess.run(
        [str(BIN / "mesh-compose"), "-o", str(out)],
        cwd=GENERIC_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"mesh-compose failed: {(done.stderr or done.stdout)[-800:]}")
    return out


class GenericServers(Servers):
    """The fake OMS and Hive Gateway serving the composed supergraph in the gateway's place."""

    supergraph: Path = BUILD / "supergraph.graphql"

    def start_gateway(self) -> None:
        cmd = [
            str(BIN / "hive-gateway"), "supergraph", str(self.supergraph),
            "--host", HOST, "--port", str(self.gateway_port),
        ]  # fmt: skip
        env = {
            "GENERIC_OMS_URL": f"http://{HOST}:{self.fake_port}",
            "GENERIC_OMS_TOKEN": DEMO_TOKEN,  # the fake's public demo token; never printed
            "NODE_ENV": "production",
        }
        proc = self._start(cmd, "gateway", env)
        self._wait(self.gateway_port, "/healthcheck", proc, "gateway")


# --- the two benchmarked operations, and whether both gateways answer the same data ----------

# Our field names are the OMS's in camelCase, except these (schema/types.py `name=`).
_RENAMED = {"images": "productimage_set", "orderId": "order"}
_RENAMED_IN = {("priceList", "id"): "pk", ("stockList", "id"): "pk"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def upstream_name(parent: str, field: str) -> str:
    """The OMS's (so Mesh's) name for our field `field` of the object at `parent`."""
    return _RENAMED_IN.get((parent, field)) or _RENAMED.get(field) or _snake(field)


def differences(ours: Any, theirs: Any, parent: str = "", where: str = "") -> list[str]:
    """Where the generic gateway's data differs from ours, field by field (at most a few)."""
    if ours == theirs:  # leaves, and JSON scalars (`attributes`, ...) compared whole
        return []
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out: list[str] = []
        for field, value in ours.items():
            name = upstream_name(parent, field)
            if name not in theirs:
                out.append(f"{where}.{field}: missing ({name})")
                continue
            out += differences(value, theirs[name], field, f"{where}.{field}")
        return out[:10]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} vs {len(theirs)} entries"]
        return [d for o, t in zip(ours, theirs, strict=True) for d in differences(o, t, parent,
                f"{where}[]")][:10]  # fmt: skip
    if parent == "id" and isinstance(theirs, int) and ours == str(theirs):
        return []  # our ids are GraphQL `ID`s (strings); Mesh types them from the data, as Int
    return [f"{where}: {ours!r} vs {theirs!r}"[:200]]


# The benchmarked operations (bench/queries.py keys) the generic gateway is measured on.
GENERIC_KEYS = ("detail", "nested-list")
_FRAGMENTS: dict[str, FragmentDefinitionNode] = {}


def _spell(node: Any, parent: str) -> str:
    """A selection of ours in the names Mesh generated (the OMS's)."""
    parts = []
    for sel in node.selection_set.selections:
        if isinstance(sel, FragmentSpreadNode):
            parts.append(_spell(_FRAGMENTS[sel.name.value], parent))
            continue
        name = sel.name.value
        # `image` is JSON on ours and an object {url} in Mesh's schema (typed from the data).
        inner = " { url }" if name == "image" else ""
        if sel.selection_set is not None:
            inner = " { " + _spell(sel, name) + " }"
        parts.append(upstream_name(parent, name) + inner)
    return " ".join(parts)


def generic_query(key: str) -> str:
    """Our benchmarked operation `key` as the generic gateway spells it.

    The root fields are named alike (mesh.config.ts); a list page is `orderItems(limit, page)
    { results }` where ours is `orderItems(first) { nodes }`; every field is the OMS's name.
    """
    document = parse(case_by_key(key).query)
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    _FRAGMENTS.update(
        (d.name.value, d) for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    )
    (root,) = ops[0].selection_set.selections
    assert isinstance(root, FieldNode) and root.selection_set is not None
    args = {a.name.value: print_ast(a.value) for a in root.arguments}
    (inner,) = root.selection_set.selections
    if isinstance(inner, FieldNode) and inner.name.value == "nodes":  # a connection's page
        args = {"limit": args.pop("first"), "page": "1"}
        body = "results { " + _spell(inner, "") + " }"
    else:
        body = _spell(root, "")
    arg_text = ", ".join(f"{k}: {v}" for k, v in args.items())
    name = ops[0].name.value if ops[0].name else key
    return f"query {name} {{ {root.name.value}({arg_text}) {{ {body} }} }}"


def as_ours(data: Any) -> Any:
    """The generic answer's `data` shaped as ours: a page's `results` as our `nodes`."""
    if not isinstance(data, dict):
        return data
    return {
        root: {"nodes": value.get("results")} if isinstance(value, dict) and "results" in value
        else value
        for root, value in data.items()
    }  # fmt: skip


def check_same(ours: Any, theirs: Any) -> list[str]:
    """Where the generic gateway's `data` differs from ours (both answers to one operation)."""
    theirs = as_ours(theirs)
    if not isinstance(ours, dict) or not isinstance(theirs, dict) or ours.keys() != theirs.keys():
        return [f"root fields differ: {str(ours)[:80]} vs {str(theirs)[:80]}"]
    out = []
    for root, value in ours.items():
        other = theirs[root]
        if isinstance(value, dict) and "nodes" in value and isinstance(other, dict):
            value, other = value["nodes"], other["nodes"]
        out += differences(value, other, "", root)
    return out
