"""Trusted documents: a manifest served by hash or documentId, and persisted-only mode."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.errors import ErrorCode
from gateway.server.app import create_app
from gateway.settings import Settings
from tests.conftest import AUTH

LISTED = "query One($id: ID!) { orderItem(id: $id) { id price } }"
OTHER = "{ orderItem(id: 2) { id } }"


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def apq(digest: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.fixture
def apollo_manifest(tmp_path):
    path = tmp_path / "persisted-query-manifest.json"
    operations = [{"id": sha(LISTED), "name": "One", "type": "query", "body": LISTED}]
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
    path.write_text(json.dumps(manifest))
    return str(path)


def post(gw, body, headers=AUTH):
    return gw.client.post(f"{gw.url}/graphql", json=body, headers=headers)


def code(response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def test_listed_documents_are_served_by_hash_and_by_document_id(make_gateway, apollo_manifest):
    gw = make_gateway(persisted_documents=apollo_manifest, persisted_only=True)
    variables = {"id": "1"}
    expected = {"data": {"orderItem": {"id": "1", "price": "599.99"}}}
    by_hash = post(gw, {"extensions": apq(sha(LISTED)), "variables": variables})
    assert by_hash.json() == expected
    by_id = post(gw, {"documentId": f"sha256:{sha(LISTED)}", "variables": variables})
    assert by_id.json() == expected
    in_full = post(gw, {"query": LISTED, "variables": variables})  # listed text is trusted too
    assert in_full.json() == expected


def test_hash_only_gets_stay_cacheable(make_gateway, apollo_manifest):
    gw = make_gateway(persisted_documents=apollo_manifest, persisted_only=True)
    for params in (
        {"extensions": json.dumps(apq(sha(LISTED)))},
        {"documentId": f"sha256:{sha(LISTED)}"},
    ):
        params["variables"] = '{"id": "3"}'
        first = gw.client.get(f"{gw.url}/graphql", params=params, headers=AUTH)
        assert first.status_code == 200 and first.json()["data"]["orderItem"]["id"] == "3"
        etag = first.headers["etag"]
        again = gw.client.get(
            f"{gw.url}/graphql", params=params, headers={**AUTH, "If-None-Match": etag}
        )
        assert again.status_code == 304


@pytest.mark.parametrize(
    "document",
    [OTHER, "{ orderItem(id: 1) { id }", "{ __schema { types { name } } }", "x" * 5000],
)
def test_persisted_only_refuses_everything_else_before_parsing(
    make_gateway, upstream, apollo_manifest, document
):
    gw = make_gateway(persisted_documents=apollo_manifest, persisted_only=True)
    response = post(gw, {"query": document})
    assert response.status_code == 400
    assert code(response) == ErrorCode.PERSISTED_QUERY_REQUIRED  # not PARSE_FAILED: never parsed
    assert upstream.calls() == 0


def test_persisted_only_turns_apq_registration_off(make_gateway, upstream, apollo_manifest):
    gw = make_gateway(persisted_documents=apollo_manifest, persisted_only=True)
    register = post(gw, {"query": OTHER, "extensions": apq(sha(OTHER))})
    assert code(register) == ErrorCode.PERSISTED_QUERY_REQUIRED
    replay = post(gw, {"extensions": apq(sha(OTHER))})
    assert code(replay) == ErrorCode.PERSISTED_QUERY_NOT_FOUND
    assert upstream.calls() == 0


def test_without_persisted_only_other_documents_and_apq_still_work(make_gateway, apollo_manifest):
    gw = make_gateway(persisted_documents=apollo_manifest)
    assert post(gw, {"query": OTHER}).json() == {"data": {"orderItem": {"id": "2"}}}
    post(gw, {"query": OTHER, "extensions": apq(sha(OTHER))})
    replay = post(gw, {"extensions": apq(sha(OTHER))})
    assert replay.json() == {"data": {"orderItem": {"id": "2"}}}


def test_a_plain_hash_map_manifest(make_gateway, tmp_path):
    path = tmp_path / "documents.json"
    path.write_text(json.dumps({sha(OTHER): OTHER}))
    gw = make_gateway(persisted_documents=str(path), persisted_only=True)
    response = post(gw, {"documentId": f"sha256:{sha(OTHER)}"})
    assert response.json() == {"data": {"orderItem": {"id": "2"}}}


@pytest.mark.parametrize(
    ("document_id", "expected"),
    [
        (f"sha256:{'0' * 64}", ErrorCode.PERSISTED_QUERY_NOT_FOUND),
        ("md5:abc", ErrorCode.BAD_REQUEST),
        (f"sha256:{'A' * 64}", ErrorCode.BAD_REQUEST),
    ],
)
def test_unknown_or_malformed_document_ids(
    make_gateway, upstream, apollo_manifest, document_id, expected
):
    gw = make_gateway(persisted_documents=apollo_manifest, persisted_only=True)
    response = post(gw, {"documentId": document_id})
    assert response.status_code == 400 and code(response) == expected
    assert upstream.calls() == 0


def test_document_id_and_query_together_are_refused(make_gateway, apollo_manifest):
    gw = make_gateway(persisted_documents=apollo_manifest)
    response = post(gw, {"documentId": f"sha256:{sha(LISTED)}", "query": LISTED})
    assert code(response) == ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"0" * 64: OTHER}),  # the hash is not the document's
        json.dumps({"format": "apollo-persisted-query-manifest", "version": 2, "operations": []}),
        json.dumps([OTHER]),
        "{not json",
    ],
)
def test_a_bad_manifest_fails_the_start(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="persisted_documents"):
        create_app(Settings(persisted_documents=str(path)))


def test_persisted_only_needs_a_manifest():
    with pytest.raises(ValueError, match="persisted_only"):
        Settings(persisted_only=True)
