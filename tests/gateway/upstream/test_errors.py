"""Every upstream failure maps to one precise extensions.code; nothing internal leaks."""

from __future__ import annotations

import copy

import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import DEMO_TOKEN, FakeOms, Faults, create_fake_app
from gateway.fake_upstream.data import DOC_ITEM
from tests.conftest import free_port, serve

# Run the tests that use `make_gateway` once per upstream transport (tests/conftest.py).
EACH_UPSTREAM_CLIENT = True

LIST = "{ orderItems(first: 3) { nodes { id } } }"
DETAIL = "{ orderItem(id: 2) { id price } }"


def only_error(body):
    assert body["data"] is None or all(v is None for v in body["data"].values()), body
    [error] = body["errors"]
    return error


def test_no_credentials_fails_without_calling_upstream(gateway, upstream):
    body = gateway.query("{ orderItems { totalCount } orderItem(id: 2) { id } }", headers={})
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == [ErrorCode.UNAUTHENTICATED, ErrorCode.UNAUTHENTICATED]
    assert "Authorization" in body["errors"][0]["message"]
    assert upstream.calls() == 0


def test_service_token_is_used_when_the_client_sends_none(make_gateway, upstream):
    gw = make_gateway(token=DEMO_TOKEN)
    assert gw.data(DETAIL, headers={})["orderItem"]["id"] == "2"


def test_client_header_wins_over_the_service_token(make_gateway, upstream):
    gw = make_gateway(token=DEMO_TOKEN)
    error = only_error(gw.query(DETAIL, headers={"Authorization": "Token wrong-secret-123"}))
    assert error["extensions"] == {"code": ErrorCode.UNAUTHENTICATED, "upstreamStatus": 401}
    assert upstream.calls("detail") == 1


def test_rejected_token_never_appears_in_the_answer(gateway):
    response = gateway.post(DETAIL, headers={"Authorization": "Token sekrit-abc-987"})
    assert "sekrit-abc-987" not in response.text
    assert only_error(response.json())["extensions"]["code"] == ErrorCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        (Faults(kind="status", status=403), ErrorCode.FORBIDDEN),
        (Faults(kind="status", status=500), ErrorCode.UPSTREAM_ERROR),
        (Faults(kind="status", status=502), ErrorCode.UPSTREAM_ERROR),
        (Faults(kind="status", status=503, retry_after="0"), ErrorCode.UPSTREAM_ERROR),
        (Faults(kind="status", status=400), ErrorCode.UPSTREAM_ERROR),
        (Faults(kind="malformed"), ErrorCode.UPSTREAM_BAD_RESPONSE),
        (Faults(kind="truncated"), ErrorCode.UPSTREAM_BAD_RESPONSE),
        (Faults(kind="misshaped"), ErrorCode.UPSTREAM_BAD_RESPONSE),
        (Faults(kind="content_type"), ErrorCode.UPSTREAM_BAD_RESPONSE),
    ],
)
@pytest.mark.parametrize("query", [LIST, DETAIL])
def test_upstream_failures_map_to_codes(make_gateway, upstream, faults, code, query):
    gateway = make_gateway()  # a fresh circuit breaker for every case
    upstream.fake.faults = faults
    response = gateway.post(query)
    assert response.status_code == 200
    error = only_error(response.json())
    assert error["extensions"]["code"] == code
    if faults.kind == "status":
        assert error["extensions"]["upstreamStatus"] == faults.status
    assert "Traceback" not in response.text and "Injected" not in response.text


def test_timeout_maps_to_upstream_timeout(make_gateway, upstream):
    gw = make_gateway(upstream_read_timeout=0.2)
    upstream.fake.faults = Faults(kind="hang", hang=1.0)
    error = only_error(gw.query(DETAIL))
    assert error["extensions"]["code"] == ErrorCode.UPSTREAM_TIMEOUT


def test_refused_connection_maps_to_upstream_unavailable(make_gateway):
    gw = make_gateway(upstream_url=f"http://127.0.0.1:{free_port()}")
    error = only_error(gw.query(LIST))
    assert error["extensions"]["code"] == ErrorCode.UPSTREAM_UNAVAILABLE
    assert "127.0.0.1" not in error["message"]


def test_detail_404_is_null_without_error(gateway):
    body = gateway.query("{ orderItem(id: 123456) { id } }")
    assert body == {"data": {"orderItem": None}}


def test_unaffected_fields_still_resolve(make_gateway, upstream):
    gateway = make_gateway()
    upstream.fake.faults = Faults(kind="status", status=500, endpoints=frozenset({"detail"}))
    body = gateway.query("{ orderItem(id: 1) { price } " + LIST[1:])
    assert body["data"] == {
        "orderItem": None,
        "orderItems": {"nodes": [{"id": "1"}, {"id": "2"}, {"id": "3"}]},
    }
    [error] = body["errors"]
    assert error["path"] == ["orderItem"]


def test_one_failing_id_fails_only_its_slot(make_gateway, upstream):
    gateway = make_gateway(upstream_retries=0)
    upstream.fake.faults = Faults(kind="status", status=502, rate=0.5, seed=3)
    body = gateway.query("{ orderItemsByIds(ids: [1, 2, 3, 4, 5, 6, 7, 8]) { id } }")
    slots = body["data"]["orderItemsByIds"]
    failed = {e["path"][1] for e in body["errors"]}
    assert failed and len(failed) < 8
    assert all(e["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR for e in body["errors"])
    for index, slot in enumerate(slots):
        assert (slot is None) == (index in failed)
        assert slot is None or slot["id"] == str(index + 1)


def _fake_with(item_changes):
    item = copy.deepcopy(DOC_ITEM)
    item_changes(item)
    return FakeOms(items=[item])


def test_float_money_is_refused_not_rounded(make_gateway):
    fake = _fake_with(lambda i: i.update(price=599.99))
    with serve(create_fake_app(fake)) as url:
        body = make_gateway(upstream_url=url).query("{ orderItem(id: 1) { netAmount price } }")
    assert body["data"] == {"orderItem": {"netAmount": "599.99", "price": None}}
    [error] = body["errors"]
    assert error["path"] == ["orderItem", "price"]
    assert error["extensions"]["code"] == ErrorCode.UPSTREAM_BAD_RESPONSE


def test_missing_required_value_is_a_bad_response(make_gateway):
    fake = _fake_with(lambda i: i["product"].update(productimage_set=[{"id": None}]))
    with serve(create_fake_app(fake)) as url:
        body = make_gateway(upstream_url=url).query(
            "{ orderItem(id: 1) { product { images { id } } } }"
        )
    assert body["data"] == {"orderItem": None}
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.UPSTREAM_BAD_RESPONSE


def test_unexpected_exceptions_are_masked(make_gateway):
    fake = _fake_with(lambda i: i["product"].update(productimage_set=["not-an-object"]))
    with serve(create_fake_app(fake)) as url:
        response = make_gateway(upstream_url=url).post(
            "{ orderItem(id: 1) { id product { images { url } } } }"
        )
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == ErrorCode.INTERNAL_ERROR
    assert len(error["extensions"]["requestId"]) >= 16
    assert "str" not in error["message"] and "attribute" not in error["message"]
    assert response.status_code == 200
