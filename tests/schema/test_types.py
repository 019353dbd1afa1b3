"""Typed conveniences and scalars: State.name(locale), attributeValues, Decimal, DateTime."""

from __future__ import annotations

from datetime import datetime

import pytest
from graphql import GraphQLError

from gateway.errors import ErrorCode, UpstreamBadResponse
from schema.scalars import parse_decimal, serialize_datetime, serialize_decimal


@pytest.mark.parametrize(
    ("locale", "name"),
    [("tr-tr", "Hazırlanıyor"), ("TR_tr", "Hazırlanıyor"), ("tr", "Hazırlanıyor"),
     ("en-us", "Preparing"), ("de-de", "Preparing"), (None, "Preparing")],
)  # fmt: skip
def test_state_name_by_locale_falls_back_to_default(gateway, locale, name):
    query = "query($l: String) { orderItem(id: 1) { state { name(locale: $l) } } }"
    assert gateway.data(query, {"l": locale})["orderItem"]["state"]["name"] == name


def test_attribute_values_merge_kwargs_and_keep_unicode(gateway):
    product = gateway.data(
        "{ orderItem(id: 1) { product { attributeValues { key label value dataType } } } }"
    )
    values = {v["key"]: v for v in product["orderItem"]["product"]["attributeValues"]}
    assert len(values) == 7
    assert values["renk"] == {
        "key": "renk",
        "label": "SİYAH",
        "value": "SİYAH",
        "dataType": "dropdown",
    }
    assert values["beden"]["label"] == "Large"


def test_timestamps_denote_the_upstream_instant(gateway, upstream):
    item = gateway.data("{ orderItem(id: 1) { createdDate state { modifiedDate } } }")["orderItem"]
    assert datetime.fromisoformat(item["createdDate"]) == datetime.fromisoformat(
        "2021-07-07T08:17:49.927569+00:00"
    )
    assert item["state"]["modifiedDate"] == "2022-10-14T10:39:33.568211Z"


@pytest.mark.parametrize(
    "text", ["599.99", "8.00", "0.00", "-12.5", "1000", "12345678901234567890.12"]
)
def test_decimal_strings_pass_through_unchanged(text):
    assert serialize_decimal(text) == text


@pytest.mark.parametrize("value", [599.99, "5e3", "1,00", "", "NaN", " 1.00", True])
def test_non_decimal_values_are_refused(value):
    with pytest.raises(UpstreamBadResponse) as info:
        serialize_decimal(value)
    assert info.value.extensions["code"] == ErrorCode.UPSTREAM_BAD_RESPONSE


def test_decimal_input_is_validated():
    assert parse_decimal("1.50") == "1.50"
    with pytest.raises(GraphQLError, match="Decimal"):
        parse_decimal(1.5)


def test_datetime_refuses_non_iso_text():
    with pytest.raises(UpstreamBadResponse) as info:
        serialize_datetime("yesterday")
    assert info.value.extensions["code"] == ErrorCode.UPSTREAM_BAD_RESPONSE
