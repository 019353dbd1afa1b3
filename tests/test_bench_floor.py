"""bench/floor.py judges a goal on each round's own ratio, not on a ratio of medians."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.support import ROOT


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    fresh = {"floor", "harness", "queries", "run", "generic_gw"} - set(sys.modules)
    yield importlib.import_module("floor")
    for name in fresh:  # bench's top-level modules stay out of the other tests' way
        sys.modules.pop(name, None)


def _runs(floor: ModuleType, gateway_ms: float, proxy_ms: float) -> list[object]:
    def run(server: str, cpu_ms: float) -> object:
        return floor.Run(server, "aiohttp", 1, "detail", 1, 1000.0, 1.0, 2.0, cpu_ms, 0, 0, {})

    return [run("gateway", gateway_ms), run("proxy", proxy_ms)]


def test_the_goal_is_the_median_of_each_rounds_ratio(floor: ModuleType) -> None:
    # The medians, 0.62 vs 0.40 ms, would say 1.55x; the rounds' own ratios are 1.40x, 2.07x
    # and 1.45x, each from two runs of the same round.
    rounds = [_runs(floor, 0.56, 0.40), _runs(floor, 0.62, 0.30), _runs(floor, 0.90, 0.62)]
    medians = floor.medians([r for each in rounds for r in each])
    args = argparse.Namespace(transports=["aiohttp"], recommended="aiohttp")
    [row] = [r for r in floor.goals(medians, args, rounds) if "detail CPU" in r]
    assert "| 1.45× | met |" in row  # the median of 1.40, 2.07 and 1.45
    [row] = [r for r in floor.goals(medians, args) if "detail CPU" in r]
    assert "| 1.55× | not met |" in row  # 0.62 / 0.40, without the rounds
