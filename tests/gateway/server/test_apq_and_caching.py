"""Automatic persisted queries, ETags and Cache-Control, and response compression."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from gateway.errors import ErrorCode
from tests.conftest import AUTH
from tests.queries import ITEM_FIELDS

QUERY = "query One($id: ID!) { orderItem(id: $id) { id price } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def apq_post(gateway, digest, query=None, variables=None, headers=AUTH):
    body: dict = {"extensions": persisted(digest), "variables": variables or {"id": "1"}}
    if query is not None:
        body["query"] = query
    return gateway.client.post(f"{gateway.url}/graphql", json=body, headers=headers)


def apq_get(gateway, digest, query=None, variables=None, headers=AUTH):
    params = {
        "extensions": json.dumps(persisted(digest)),
        "variables": json.dumps(variables or {"id": "1"}),
    }
    if query is not None:
        params["query"] = query
    return gateway.client.get(f"{gateway.url}/graphql", params=params, headers=headers)


def code(response):
    return response.json()["errors"][0]["extensions"]["code"]


ONE = {"data": {"orderItem": {"id": "1", "price": "599.99"}}}


# --- APQ -------------------------------------------------------------------------------------


@pytest.mark.parametrize("send", [apq_post, apq_get], ids=["POST", "GET"])
def test_apq_round_trip(make_gateway, upstream, send):
    gw = make_gateway()
    miss = send(gw, DIGEST)
    assert miss.status_code == 200  # what Apollo clients expect before they register
    assert code(miss) == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    assert "data" not in miss.json()
    assert upstream.calls() == 0

    registered = send(gw, DIGEST, QUERY)
    assert registered.status_code == 200 and registered.json() == ONE

    hit = send(gw, DIGEST, variables={"id": "2"})
    assert hit.status_code == 200
    assert hit.json() == {"data": {"orderItem": {"id": "2", "price": "415.43"}}}


@pytest.mark.parametrize("send", [apq_post, apq_get], ids=["POST", "GET"])
def test_apq_hash_mismatch(make_gateway, upstream, send):
    gw = make_gateway()
    wrong = send(gw, sha("{ __typename }"), QUERY)
    assert wrong.status_code == 400
    assert code(wrong) == ErrorCode.PERSISTED_QUERY_HASH_MISMATCH
    assert upstream.calls() == 0
    # nothing was registered under either hash
    assert code(send(gw, sha("{ __typename }"))) == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    assert code(send(gw, DIGEST)) == ErrorCode.PERSISTED_QUERY_NOT_FOUND


def test_apq_registration_is_shared_by_post_and_get(make_gateway):
    gw = make_gateway()
    assert apq_post(gw, DIGEST, QUERY).json() == ONE
    assert apq_get(gw, DIGEST).json() == ONE


def test_a_hash_only_get_from_a_browser_is_an_operation_not_graphiql(make_gateway, upstream):
    gw = make_gateway()
    headers = {**AUTH, "Accept": BROWSER}
    miss = apq_get(gw, DIGEST, headers=headers)
    assert miss.headers["content-type"].startswith("application/json")
    assert code(miss) == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    apq_post(gw, DIGEST, QUERY)
    hit = apq_get(gw, DIGEST, headers=headers)
    assert hit.status_code == 200
    assert hit.headers["content-type"].startswith("application/json")
    assert hit.json() == ONE


def test_apq_store_is_bounded_and_least_recently_used(make_gateway):
    gw = make_gateway(apq_cache_size=2)
    queries = [f"query Q{i}($id: ID!) {{ orderItem(id: $id) {{ id }} }}" for i in range(4)]
    a, b, c, d = queries
    for query in (a, b):
        assert "errors" not in apq_post(gw, sha(query), query).json()
    assert "errors" not in apq_post(gw, sha(c), c).json()  # a third evicts the oldest: a
    assert code(apq_post(gw, sha(a))) == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    assert "errors" not in apq_post(gw, sha(b)).json()  # b is now the most recently used
    assert "errors" not in apq_post(gw, sha(d), d).json()  # evicts c, not b
    assert "errors" not in apq_post(gw, sha(b)).json()
    assert code(apq_post(gw, sha(c))) == ErrorCode.PERSISTED_QUERY_NOT_FOUND


def test_apq_registration_of_an_invalid_document_still_reports_the_document(make_gateway):
    gw = make_gateway()
    bad = "{ orderItem(id: 1) { nope } }"
    response = apq_post(gw, sha(bad), bad)
    assert response.status_code == 400
    assert code(response) == ErrorCode.GRAPHQL_VALIDATION_FAILED


# --- ETag and Cache-Control ------------------------------------------------------------------


def get(gateway, query=QUERY, variables=None, headers=AUTH):
    params = {"query": query, "variables": json.dumps(variables or {"id": "1"})}
    return gateway.client.get(f"{gateway.url}/graphql", params=params, headers=headers)


def test_get_carries_an_etag_and_if_none_match_gets_304(gateway):
    first = get(gateway)
    assert first.status_code == 200 and first.json() == ONE
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = get(gateway, headers={**AUTH, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    for header in (f"W/{etag}", f'"nope", {etag}', f'"a",{etag} , "b"'):
        assert get(gateway, headers={**AUTH, "If-None-Match": header}).status_code == 304

    other = get(gateway, variables={"id": "2"}, headers={**AUTH, "If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    stale = get(gateway, headers={**AUTH, "If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json() == ONE


def test_get_responses_vary_by_authorization(gateway):
    vary = {v.strip().lower() for v in get(gateway).headers["vary"].split(",")}
    assert {"authorization", "accept"} <= vary


def test_cache_control_defaults(gateway):
    assert get(gateway).headers["cache-control"] == "private, no-store"
    post = gateway.post(QUERY, {"id": "1"})
    assert post.headers["cache-control"] == "no-store"
    assert "etag" not in post.headers
    failed = get(gateway, query="{ orderItem(id: 1) { nope } }")
    assert failed.status_code == 400
    assert failed.headers["cache-control"] == "no-store"
    assert "etag" not in failed.headers


def test_cache_control_max_age(make_gateway):
    gw = make_gateway(get_cache_max_age=30)
    assert get(gw).headers["cache-control"] == "private, max-age=30"
    assert gw.post(QUERY, {"id": "1"}).headers["cache-control"] == "no-store"


def test_apq_get_is_cacheable_too(make_gateway):
    gw = make_gateway(get_cache_max_age=5)
    apq_post(gw, DIGEST, QUERY)
    hit = apq_get(gw, DIGEST)
    assert hit.headers["cache-control"] == "private, max-age=5"
    again = apq_get(gw, DIGEST, headers={**AUTH, "If-None-Match": hit.headers["etag"]})
    assert again.status_code == 304


# --- compression -----------------------------------------------------------------------------

BIG = ITEM_FIELDS + "{ orderItems(first: 30) { nodes { ...ItemFields } } }"


def raw_post(gateway, query, encoding):
    """The body exactly as it came over the wire, with its Content-Encoding."""
    headers = {**AUTH, "Accept-Encoding": encoding}
    with gateway.client.stream(
        "POST", f"{gateway.url}/graphql", json={"query": query}, headers=headers
    ) as response:
        return response.headers.get("content-encoding"), b"".join(response.iter_raw())


def test_large_responses_are_gzipped_and_decompress_to_the_same_body(gateway):
    encoding, plain = raw_post(gateway, BIG, "identity")
    assert encoding is None
    assert len(plain) > 20_000 and json.loads(plain)["data"]["orderItems"]["nodes"]
    encoding, squeezed = raw_post(gateway, BIG, "gzip")
    assert encoding == "gzip"
    assert len(squeezed) < len(plain) / 4
    assert gzip.decompress(squeezed) == plain


def test_compressed_responses_vary_by_accept_encoding_once(gateway):
    response = gateway.client.post(
        f"{gateway.url}/graphql",
        json={"query": BIG},
        headers={**AUTH, "Accept-Encoding": "gzip"},
    )
    assert response.headers["content-encoding"] == "gzip"
    vary = [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert sorted(vary) == ["accept", "accept-encoding", "authorization"]


def test_small_responses_are_not_compressed(gateway):
    encoding, body = raw_post(gateway, "{ orderItem(id: 1) { id } }", "gzip")
    assert encoding is None
    assert json.loads(body) == {"data": {"orderItem": {"id": "1"}}}


def test_no_compression_without_accept_encoding(gateway):
    request = gateway.client.build_request(
        "POST", f"{gateway.url}/graphql", json={"query": BIG}, headers=AUTH
    )
    del request.headers["accept-encoding"]
    response = gateway.client.send(request)
    assert "content-encoding" not in response.headers
    assert response.json()["data"]["orderItems"]["nodes"]


def test_compression_threshold_is_a_setting(make_gateway):
    gw = make_gateway(compression_min_size=20)
    encoding, body = raw_post(gw, "{ orderItem(id: 1) { id price netAmount } }", "gzip")
    assert encoding == "gzip"
    assert json.loads(gzip.decompress(body))["data"]["orderItem"]["id"] == "1"


def test_get_responses_are_compressed_with_an_etag(gateway):
    params = {"query": BIG}
    headers = {**AUTH, "Accept-Encoding": "gzip"}
    response = gateway.client.get(f"{gateway.url}/graphql", params=params, headers=headers)
    assert response.headers["content-encoding"] == "gzip"
    etag = response.headers["etag"]
    again = gateway.client.get(
        f"{gateway.url}/graphql", params=params, headers={**headers, "If-None-Match": etag}
    )
    assert again.status_code == 304
