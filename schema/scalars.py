"""Custom scalars: `Decimal` and `DateTime` pass the upstream's strings through unchanged."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

from gateway.errors import ErrorCode, UpstreamBadResponse

Decimal = NewType("Decimal", str)
DateTime = NewType("DateTime", str)

_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def serialize_decimal(value: Any) -> str:
    # A float has already lost the exact amount, so it is refused rather than printed.
    if type(value) is str and _DECIMAL.fullmatch(value):
        return value
    if type(value) is int:
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
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
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
