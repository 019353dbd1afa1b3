"""Typed conveniences and scalars: State.name(locale), attributeValues, Decimal, DateTime."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from graphql import GraphQLError

from gateway.errors import ErrorCode, UpstreamBadResponse
from schema.scalars import (
    _DECIMALS_SEEN,
    AcceptedStrings,
    parse_decimal,
    serialize_datetime,
    serialize_decimal,
)


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


# Strings just inside and just outside each scalar's grammar, and non-strings equal to them.
_TRICKY = [
    "599.99", "8.00", "0", "-0", "-0.0", "01.5", "1.", ".5", "+1", "1e3", "1_000", " 1", "1 ",
    "1\n", "١٢", "１２", "2021-07-07T08:17:49.927569Z", "2021-07-07T08:17:49.927569+00:00",
    "2021-07-07", "2021-07-07T25:00:00", "2021-02-30T00:00:00", "2021-07-07T08:17:49 ",
    "20210707T081749", "", 1, 0, -7, True, False, 1.0, 599.99, None, ["1"],
]  # fmt: skip


def _verdict(function, value):
    try:
        return ("ok", function(value))
    except UpstreamBadResponse as error:
        return ("refused", error.extensions["code"])


def _unmemoised_decimal(value):
    if type(value) is str and re.fullmatch(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", value):
        return value
    if type(value) is int:
        return str(value)
    raise UpstreamBadResponse("not a decimal")


def _unmemoised_datetime(value):
    if type(value) is str:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise UpstreamBadResponse("not a timestamp")


@pytest.mark.parametrize(
    ("memoised", "reference"),
    [(serialize_decimal, _unmemoised_decimal), (serialize_datetime, _unmemoised_datetime)],
)
def test_the_memo_of_accepted_strings_answers_as_the_check_does(memoised, reference):
    expected = [_verdict(reference, value) for value in _TRICKY]
    # Twice, forwards then backwards: the second sight of every value comes from the memo.
    for values in (_TRICKY, _TRICKY, _TRICKY[::-1]):
        got = [_verdict(memoised, value) for value in values]
        want = expected if values is _TRICKY else expected[::-1]
        assert got == want
    accepted = [v for v, (kind, _) in zip(_TRICKY, expected, strict=True) if kind == "ok"]
    assert accepted and len(accepted) < len(_TRICKY)  # both verdicts are exercised
    # The answer is the very string passed in, never an equal one remembered from another call.
    fresh = (
        "".join(["599", ".99"])
        if memoised is serialize_decimal
        else "".join(["2021-07-07T08:17:49", ".927569Z"])
    )
    assert memoised(fresh) is fresh


def test_the_memo_stays_bounded_and_keeps_no_long_strings():
    seen = AcceptedStrings(max_entries=100, max_length=10)
    strings = seen.strings  # compiled projectors bind this set: it is emptied, never replaced
    for n in range(1000):
        seen.add(str(n))
        assert len(seen) <= 100
    assert seen.strings is strings and "999" in strings
    seen.add("1" * 11)
    assert "1" * 11 not in seen
    long_amount = "1" * 5000 + ".5"
    assert serialize_decimal(long_amount) is long_amount  # accepted, not remembered
    assert long_amount not in _DECIMALS_SEEN
    for n in range(_DECIMALS_SEEN.max_entries + 10):
        serialize_decimal(f"{n}.25")
    assert 0 < len(_DECIMALS_SEEN) <= _DECIMALS_SEEN.max_entries
