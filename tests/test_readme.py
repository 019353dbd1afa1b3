"""The README's tables against the code: every setting has its row; the error table is the enum."""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import get_args

from gateway.cli import INTERNAL_SETTINGS, describe_default, flag
from gateway.errors import ErrorCode
from gateway.execution.compiled import Engine, Fallback
from gateway.settings import ENV_VARS, Settings
from tests.support import README, ROOT, tables

SOURCES = [ROOT / "gateway", ROOT / "resolvers", ROOT / "schema"]
# Upper-case string constants in the code that are not error codes.
NOT_CODES = frozenset(
    {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CLIENT", "SERVER", "INTERNAL",
     "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "TEXT", "OTHER", "URL"}
)  # fmt: skip
NOT_CODE_PREFIXES = ("OMS_", "OTEL_", "PROMETHEUS_")
# Any all-capitals word: a pattern of four letters or more missed BAD_REQUEST and BAD_USER_INPUT.
_CODE = re.compile(r"[A-Z][A-Z0-9]+(_[A-Z0-9]+)*")
_NUMBER = re.compile(r"-?\d[\d_,]*(?:\.\d+)?")


def _default_matches(cell: str, value: object) -> bool:
    text = cell.replace("`", "").strip().lower()
    expected = describe_default(value).lower()
    if expected == "none":
        return text.startswith(("none", "empty", "unset"))
    if isinstance(value, bool):
        return text.split()[0] == expected
    if isinstance(value, int | float):
        numbers = _NUMBER.findall(text)
        return bool(numbers) and float(numbers[0].replace("_", "").replace(",", "")) == value
    return text.split()[0] == expected


def settings_rows() -> dict[str, tuple[list[str], list[str]]]:
    """Setting name -> (header, row), from any table whose first column names settings."""
    rows = {}
    for header, body in tables(README):
        if not header or header[0].lower() != "setting":
            continue
        for row in body:
            for name in re.findall(r"`([a-z_]+)`", row[0]):
                rows.setdefault(name, (header, row))
    return rows


def test_every_setting_has_a_readme_row_with_its_variable_and_default():
    rows = settings_rows()
    problems = []
    for f in dataclasses.fields(Settings):
        if f.name in INTERNAL_SETTINGS:
            continue
        default = describe_default(f.default)
        hint = f"| `{f.name}` | `{ENV_VARS[f.name]}` | `{flag(f.name)}` | `{default}` | ... |"
        if f.name not in rows:
            problems.append(f"{f.name}: no row in the README's settings table; add {hint}")
            continue
        header, row = rows[f.name]
        if ENV_VARS[f.name] not in " ".join(row):
            problems.append(f"{f.name}: its row does not name {ENV_VARS[f.name]}; expected {hint}")
        column = header.index("default") if "default" in header else None
        if column is None or column >= len(row) or not _default_matches(row[column], f.default):
            problems.append(f"{f.name}: its row's default is not {default}; expected {hint}")
    assert not problems, "README settings table is out of date:\n" + "\n".join(problems)


def test_no_readme_row_names_a_setting_that_does_not_exist():
    names = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(settings_rows()) - names)
    assert not unknown, f"README settings rows for settings that do not exist: {unknown}"


def code_literals(source: str) -> list[tuple[str, int]]:
    """Upper-case string constants in `source` that look like error codes: (value, line)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        value = node.value
        if (
            _CODE.fullmatch(value)
            and value not in NOT_CODES
            and not value.startswith(NOT_CODE_PREFIXES)
        ):
            found.append((value, node.lineno))
    return found


def readme_codes() -> list[str]:
    """The codes of the README's error table, in order (a code named twice appears twice)."""
    codes: list[str] = []
    for header, body in tables(README):
        if header and header[0].lower() == "code":
            for row in body:
                codes.extend(re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0]))
    return codes


def test_the_readme_error_table_equals_the_error_code_enum():
    documented = readme_codes()
    enum = {code.value for code in ErrorCode}
    assert len(documented) == len(set(documented)), f"codes with two rows: {documented}"
    assert set(documented) == enum, (
        "the README's error table (`| code | when |` under Errors) and gateway.errors.ErrorCode "
        f"differ: no row for {sorted(enum - set(documented))}, "
        f"rows for codes that do not exist: {sorted(set(documented) - enum)}"
    )


def test_every_error_code_in_the_code_is_an_error_code_member():
    # One source of truth: outside gateway/errors.py a code is `ErrorCode.X`, never a string.
    literals = []
    for root in SOURCES:
        for path in sorted(root.rglob("*.py")):
            if "fake_upstream" in path.parts or path == ROOT / "gateway" / "errors.py":
                continue  # the fake OMS's own words; the enum itself
            for value, line in code_literals(path.read_text()):
                literals.append(f"{path.relative_to(ROOT)}:{line} {value!r}")
    assert not literals, (
        "upper-case string constants that look like error codes: use gateway.errors.ErrorCode "
        "(add a member and a README row for a new code), or, if the constant is not an error "
        "code, add it to NOT_CODES in tests/test_readme.py:\n" + "\n".join(literals)
    )


def test_tests_and_bench_name_error_codes_by_member():
    """A code spelt as a string in a test can drift from the enum and still pass against it."""
    codes = {code.value for code in ErrorCode}
    copies = [
        f"{path.relative_to(ROOT)}:{line} {value!r}"
        for top in ("tests", "bench")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != ROOT / "tests" / "test_readme.py"  # its parser's test data
        for value, line in code_literals(path.read_text())
        if value in codes
    ]
    assert not copies, "use gateway.errors.ErrorCode members:\n" + "\n".join(copies)


def access_log_values(text: str, field: str) -> set[str]:
    """The values the README's access-log paragraph gives for `field`: `field` (`a`, `b` ...)."""
    found = re.search(rf"`{field}` \(([^)]*)\)", " ".join(text.split()))
    assert found, f"no `{field}` (...) in the README"
    return set(re.findall(r"`([\w-]+)`", found[1]))


def test_the_readme_names_every_engine_and_fallback_reason():
    assert access_log_values(README, "engine") == {*get_args(Engine), "none"}
    assert access_log_values(README, "fallback") == set(get_args(Fallback))
    assert access_log_values("`engine`\n (`a` or\n `b-c`)", "engine") == {"a", "b-c"}


def test_the_table_parsers_can_fail():
    # The checks above are only as good as their parsing: a table without a row must be seen.
    text = "| setting | env | default |\n|---|---|---|\n| `port` | `OMS_PORT` | `8000` |\n"
    assert [row[0] for _, rows in tables(text) for row in rows] == ["`port`"]
    assert _default_matches("`8000`", 8000) and not _default_matches("`8001`", 8000)
    assert _default_matches("none", "") and not _default_matches("`json`", "text")
    assert _default_matches("`2.0` s", 2.0) and _default_matches("`true`", True)
    source = 'code = {"code": "OVERLOADED"}\nmethod = "GET"\nlevel = "OMS_LEVEL"\n'
    assert code_literals(source) == [("OVERLOADED", 1)]


def test_the_changelog_leads_with_the_package_version():
    from importlib.metadata import version

    releases = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]? - \d{4}-\d{2}-\d{2}$",
                          (ROOT / "CHANGELOG.md").read_text(), re.M)  # fmt: skip
    assert releases and releases[0] == version("oms-gateway")
