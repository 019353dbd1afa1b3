"""Write examples/persisted-documents.json: the starter kit's operations as trusted documents.

Each operation with the fragments it uses, printed by graphql-core, keyed by its SHA-256: the
plain-map manifest that `OMS_PERSISTED_DOCUMENTS` accepts. tests/test_examples.py checks that
the file is current. Usage: .venv/bin/python scripts/examples_manifest.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    OperationDefinitionNode,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor

ROOT = Path(__file__).resolve().parents[1]
OPERATIONS = ROOT / "examples" / "operations"
MANIFEST = ROOT / "examples" / "persisted-documents.json"


def examples_document() -> DocumentNode:
    """Every example file as one document (operations share the fragments file)."""
    files = sorted(OPERATIONS.rglob("*.graphql"))
    return parse("\n".join(path.read_text() for path in files))


def _spreads(node: object) -> set[str]:
    names: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: object) -> None:
            names.add(spread.name.value)

    visit(node, Spreads())  # type: ignore[arg-type]
    return names


def documents() -> dict[str, str]:
    document = examples_document()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    manifest: dict[str, str] = {}
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        needed, todo = set(), _spreads(operation)
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo |= _spreads(fragments[name])
        parts = [operation, *(fragments[n] for n in sorted(needed))]
        text = "\n\n".join(print_ast(p) for p in parts)
        manifest[hashlib.sha256(text.encode()).hexdigest()] = text
    return manifest


if __name__ == "__main__":
    MANIFEST.write_text(json.dumps(documents(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {MANIFEST.relative_to(ROOT)}")
