"""Custom scalars: `Decimal` and `DateTime` pass the upstream's strings through unchanged."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

from gateway.errors import ErrorCode, UpstreamBadResponse

Decimal = NewType("Decimal", str)
DateTime = NewType("DateTime", str)

_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


class AcceptedStrings:
    """Upstream strings a scalar has already accepted, so a repeat skips the check (a 50-item
    list checks ~870 amounts and timestamps, many the same). Only a verdict is kept: the
    value answered is always the one passed in. Bounded in entries and in each string's
    length, and emptied when full: it can neither grow without bound nor hold a large body.
    Hot paths look up `strings`, a plain set: `in` on a set subclass goes through a Python-level
    `__contains__` lookup (~180 instructions more per value, ~870 values per 50-item list)."""

    __slots__ = ("max_entries", "max_length", "strings")

    def __init__(self, max_entries: int = 4096, max_length: int = 64) -> None:
        self.strings: set[str] = set()  # cleared in place, never replaced: code binds it
        self.max_entries = max_entries
        self.max_length = max_length

    def __contains__(self, value: object) -> bool:
        return value in self.strings

    def __len__(self) -> int:
        return len(self.strings)

    def add(self, value: str) -> None:
        if len(value) <= self.max_length:
            strings = self.strings
            if len(strings) >= self.max_entries:
                strings.clear()
            strings.add(value)


_DECIMALS_SEEN = AcceptedStrings()
_DATETIMES_SEEN = AcceptedStrings()
_DECIMALS, _DATETIMES = _DECIMALS_SEEN.strings, _DATETIMES_SEEN.strings


def serialize_decimal(value: Any) -> str:
    # A float has already lost the exact amount, so it is refused rather than printed.
    if type(value) is str:
        if value in _DECIMALS:
            return value
        if _DECIMAL.fullmatch(value):
            _DECIMALS_SEEN.add(value)
            return value
    elif type(value) is int:
        return str(value)
    raise UpstreamBadResponse("The OMS API sent an amount that is not a decimal string.")


def parse_decimal(value: Any) -> str:
    if type(value) is str and _DECIMAL.fullmatch(value):
        return value
    raise GraphQLError(
        'Decimal values are strings such as "599.99".',
        extensions={"code": ErrorCode.BAD_USER_INPUT},
    )


def serialize_datetime(value: Any) -> str:
    # The upstream's ISO 8601 text already names the instant; re-formatting it would only risk
    # changing precision or zone notation.
    if type(value) is str:
        if value in _DATETIMES:
            return value
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            _DATETIMES_SEEN.add(value)
            return value
    raise UpstreamBadResponse("The OMS API sent a timestamp that is not ISO 8601.")


def parse_datetime(value: Any) -> str:
    if type(value) is str:
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise GraphQLError(
        "DateTime values are ISO 8601 strings.", extensions={"code": ErrorCode.BAD_USER_INPUT}
    )


# Each serializer's memo, for code that inlines the lookup (the compiled projectors): a string
# in it is answered as is, exactly as the serializer itself would answer it.
ACCEPTED: dict[Callable[[Any], str], AcceptedStrings] = {
    serialize_decimal: _DECIMALS_SEEN,
    serialize_datetime: _DATETIMES_SEEN,
}


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Decimal: strawberry.scalar(
        name="Decimal",
        description=(
            "An exact decimal number, sent as a string exactly as the OMS API wrote it "
            '(for example "599.99" or "8.00"). It never passes through a binary float.'
        ),
        serialize=serialize_decimal,
        parse_value=parse_decimal,
    ),
    DateTime: strawberry.scalar(
        name="DateTime",
        description=(
            "An ISO 8601 date and time, sent exactly as the OMS API wrote it "
            '(for example "2021-07-07T08:17:49.927569Z").'
        ),
        specified_by_url="https://scalars.graphql.org/andimarek/date-time",
        serialize=serialize_datetime,
        parse_value=parse_datetime,
    ),
}
