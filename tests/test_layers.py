"""Every module imports alone (no cycle, no reliance on import order); the contracts name them all."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from tests.support import ROOT

PACKAGES = ("gateway", "schema", "resolvers")

# Run in a fresh interpreter that has imported nothing of the project: each module is imported by
# its own forked child, all children at once. The libraries are imported first only to save
# each child the time; they cannot hide a cycle among the project's own modules.
_IMPORT_ALONE = """
import importlib, os, sys
for library in ("graphql", "strawberry", "starlette.applications", "httpx", "uvicorn", "aiohttp"):
    importlib.import_module(library)
assert not [m for m in sys.modules if m.split(".")[0] in {packages!r}], "imported too early"
children = {{}}
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print(f"{{name}}: {{type(exc).__name__}}: {{exc}}", flush=True)
            os._exit(1)
        os._exit(0)
    children[pid] = name
failed = 0
for pid in children:
    _, status = os.waitpid(pid, 0)
    failed += status != 0
sys.exit(1 if failed else 0)
"""


def modules() -> list[str]:
    """Every module of the three packages, packages included, by dotted name."""
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_alone(names: list[str]) -> subprocess.CompletedProcess[str]:
    script = _IMPORT_ALONE.format(packages=set(PACKAGES))
    return subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = modules()
    assert "schema.query" in names and "gateway.server.endpoint" in names
    result = import_alone(names)
    assert result.returncode == 0, "modules that fail to import alone:\n" + result.stdout
    assert result.stdout == "" and "imported too early" not in result.stderr


def test_a_module_that_cannot_import_is_reported():
    result = import_alone(["gateway.settings", "gateway.no_such_module"])
    assert result.returncode == 1
    assert result.stdout.startswith("gateway.no_such_module: ModuleNotFoundError")


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _named(expressions: list[str]) -> set[str]:
    return {
        name.strip()
        for expression in expressions
        for name in expression.replace(":", "|").split("|")
    }


def _top_level() -> set[str]:
    """gateway's direct modules and subpackages, with schema and resolvers."""
    names = {"schema", "resolvers"}
    for path in (ROOT / "gateway").iterdir():
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            names.add(f"gateway.{path.stem}")
    return names


def test_every_module_has_a_layer_and_only_the_cli_may_import_the_fake():
    contracts = _contracts()
    layered = _named(contracts["layers"]["layers"])
    unlayered = _top_level() - layered - {"gateway.fake_upstream"}
    assert not unlayered, f"give these a layer in pyproject.toml's contracts: {sorted(unlayered)}"
    sources = set(contracts["fake-upstream"]["source_modules"])
    assert sources == layered - {"gateway.cli"}, "the fake OMS contract must cover every layer"
