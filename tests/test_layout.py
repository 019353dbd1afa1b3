"""The README's "How the code is laid out" table against the tree: every package has its line."""

from __future__ import annotations

import ast
import re
import tomllib

from tests.support import README, ROOT, tables


def layout_rows() -> list[str]:
    [rows] = [rows for header, rows in tables(README) if header[:2] == ["package", "what it holds"]]
    return [row[0] for row in rows]


def test_every_package_has_one_line_and_no_line_names_a_missing_one():
    listed = {re.sub(r"`([^`]+)`.*", r"\1", cell) for cell in layout_rows()}
    packages = {f"{p.parent.relative_to(ROOT)}/" for p in ROOT.glob("gateway/*/__init__.py")}
    packages |= {"schema/", "resolvers/", "gateway/cli.py", "gateway/"}
    assert listed == packages


def test_the_root_line_names_every_root_module():
    [ground] = [
        row for header, rows in tables(README) if header[:1] == ["package"] for row in rows
        if row[0].startswith("`gateway/` (root")
    ]  # fmt: skip
    named = set(re.findall(r"`(\w+\.py)`", ground[1]))
    on_disk = {p.name for p in (ROOT / "gateway").glob("*.py")} - {"__init__.py", "cli.py"}
    assert named == on_disk


def test_the_table_reads_top_down_in_the_order_of_the_layers_contract():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [layers] = [
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers"
    ]
    as_paths = [_as_path(layer) for layer in layers]
    listed = [re.sub(r"`([^`]+)`.*", r"\1", cell) for cell in layout_rows()]
    assert [p for p in listed if p in as_paths] == as_paths


def test_the_tests_mirror_the_packages():
    """Each test directory under tests/ names a package of the code, and each subpackage of
    gateway/ with modules of its own has its test directory: a reader finds a layer's tests
    where its code is."""
    test_dirs = {
        p.parent.relative_to(ROOT / "tests").as_posix()
        for p in (ROOT / "tests").glob("**/__init__.py")
        if p.parent != ROOT / "tests"
    }
    code_dirs = {
        p.parent.relative_to(ROOT).as_posix()
        for top in ("gateway", "resolvers", "schema")
        for p in (ROOT / top).glob("**/__init__.py")
    }
    assert test_dirs - {"e2e"} <= code_dirs
    layers = {
        p.parent.relative_to(ROOT).as_posix()
        for p in ROOT.glob("gateway/*/__init__.py")
        if p.parent.name not in ("fake_upstream", "static")
    }
    assert layers <= test_dirs


def _as_path(layer: str) -> str:
    """`gateway.server` -> `gateway/server/`; the CLI is a module, the ground is gateway's root."""
    if "|" in layer:
        return "gateway/"
    if layer == "gateway.cli":
        return "gateway/cli.py"
    return layer.replace(".", "/") + "/"


def imported_test_modules(source: str) -> list[str]:
    """The `test_*` modules a source imports: shared helpers belong in `tests/support.py`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_no_test_module_imports_another():
    offenders = {
        str(path.relative_to(ROOT)): imported
        for path in (ROOT / "tests").rglob("*.py")
        if (imported := imported_test_modules(path.read_text()))
    }
    assert offenders == {}


def test_the_import_check_can_fail():
    assert imported_test_modules("from tests.gateway.test_compiled import run") == [
        "tests.gateway.test_compiled"
    ]
    assert imported_test_modules("from tests.gateway import test_compiled") == [
        "tests.gateway.test_compiled"
    ]
    assert imported_test_modules("import tests.test_readme") == ["tests.test_readme"]
