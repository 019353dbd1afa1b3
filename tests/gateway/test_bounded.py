"""`remember`, the bounded memo under plans, compiled variants and budget figures."""

from __future__ import annotations

from gateway.bounded import remember


def test_a_key_is_made_once_and_the_table_stops_at_its_limit():
    table: dict[object, int] = {}
    made: list[object] = []

    def make(key: object) -> int:
        made.append(key)
        return len(made)

    assert [remember(table, k, lambda k=k: make(k), 2) for k in ("a", "b", "a", "c", "c")] == [
        1, 2, 1, 3, 4,
    ]  # fmt: skip
    assert table == {"a": 1, "b": 2}  # "c" came after the limit: made each time, never kept
    assert made == ["a", "b", "c", "c"]


def test_an_unhashable_key_is_made_for_the_call_only():
    table: dict[object, str] = {}
    key = ("ids", [1, 2])  # a list in the variables
    assert remember(table, key, lambda: "fresh", 8) == "fresh"
    assert remember(table, key, lambda: "again", 8) == "again"
    assert table == {}
