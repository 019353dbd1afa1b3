"""bench/server_cpu.py reads callgrind's dumps: the totals of the right one, never a partial one."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ROOT

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  /repo/.venv/bin/python -m gateway.cli serve
part: 1

desc: I1 cache: 
desc: Timerange: Basic block 0 - 22714081
desc: Trigger: dump nested-list

positions: line
events: Ir
summary: 0

fl=(1) ???
fn=(1) main
0 7

totals: 116497995
"""


@pytest.fixture
def server_cpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    fresh = {"server_cpu", "harness", "queries"} - set(sys.modules)
    yield importlib.import_module("server_cpu")
    for name in fresh:  # bench's top-level modules stay out of the other tests' way
        sys.modules.pop(name, None)


def test_a_dump_gives_its_trigger_and_its_totals(server_cpu: ModuleType) -> None:
    assert server_cpu.parse_dump(DUMP) == ("dump nested-list", 116497995)


def test_a_dump_still_being_written_is_not_read(server_cpu: ModuleType) -> None:
    with pytest.raises(ValueError):
        server_cpu.parse_dump(DUMP.split("totals:")[0])


def test_the_dump_of_the_label_asked_for_is_read(server_cpu: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "gateway.out"
    (tmp_path / "gateway.out.1").write_text(
        DUMP.replace("nested-list", "detail").replace("116497995", "1000")
    )
    (tmp_path / "gateway.out.2").write_text(DUMP)
    assert server_cpu.read_dump(out, "detail") == 1000
    assert server_cpu.read_dump(out, "nested-list") == 116497995
