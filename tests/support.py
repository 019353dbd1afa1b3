"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from graphql import DocumentNode

ROOT = Path(__file__).resolve().parents[1]  # the checkout
SDL = ROOT / "schema.graphql"
README = (ROOT / "README.md").read_text()


class FakeClock:
    """The upstream's time for a gateway under test (`create_app(clock=...)`): it moves only
    when told or when the gateway sleeps, and a sleep returns at once and is recorded. Tests
    assert on the sleeps requested and the time that passed, never on the wall clock."""

    def __init__(self, now: float = 1000.0, wall: float = 1_800_000_000.0) -> None:
        self.now = now
        self._wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self._wall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)  # still a point where other tasks run

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._wall += seconds


def metrics_text(gateway: Any) -> str:
    response = gateway.client.get(f"{gateway.url}/metrics")
    assert response.status_code == 200
    text: str = response.text
    return text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the first sample of `name` with these labels; a missing one fails."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} with {labels} in the metrics")


def selection_nodes(document: DocumentNode) -> int:
    """Fields, inline fragments and spreads written in the document."""
    count = 0
    stack: list[Any] = [d.selection_set for d in document.definitions]  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        count += len(node.selections)
        stack.extend(getattr(s, "selection_set", None) for s in node.selections)
    return count


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table: its header cells and its rows' cells (stripped)."""
    found: list[tuple[list[str], list[list[str]]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if (
            lines[i].startswith("|")
            and i + 1 < len(lines)
            and re.match(r"\|[-:| ]+\|$", lines[i + 1])
        ):
            header = _cells(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            found.append((header, rows))
        else:
            i += 1
    return found


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]
