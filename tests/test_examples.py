"""The client starter kit in examples/: valid against schema.graphql, runnable, and current."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from graphql import GraphQLScalarType, OperationDefinitionNode, build_schema, validate

from scripts.examples_manifest import MANIFEST, documents, examples_document
from tests.support import README, ROOT, SDL

EXAMPLES = ROOT / "examples"

# Variables that make each example operation do real work against the fake OMS.
VARIABLES: dict[str, dict[str, Any]] = {
    "OrderItemsPage": {"first": 5, "orderNumber": None},
    "OrderItemsPageBackward": {"last": 5},
    "OrderItemsByPage": {"page": 2},
    "OrderItemDetail": {"id": "1"},
    "OrderItemsByIds": {"ids": ["1", "7", "999999"]},
    "OrderSummary": {"orderNumber": "2021000002"},
    "OrderItemCount": {"orderNumber": "2021000002"},
}


def test_every_example_validates_against_schema_graphql():
    errors = validate(build_schema(SDL.read_text()), examples_document())
    assert errors == []


def test_every_example_operation_has_variables_here():
    names = {
        d.name.value
        for d in examples_document().definitions
        if isinstance(d, OperationDefinitionNode) and d.name
    }
    assert names == set(VARIABLES)


DOCUMENTS = {re.findall(r"query (\w+)", text)[0]: text for text in documents().values()}


@pytest.mark.parametrize(("name", "document"), list(DOCUMENTS.items()), ids=list(DOCUMENTS))
def test_every_example_runs_without_errors(gateway, name, document):
    data = gateway.data(document, VARIABLES[name])
    assert all(value is not None for value in data.values())


def test_the_persisted_documents_manifest_is_current():
    assert json.loads(MANIFEST.read_text()) == documents(), (
        "run `.venv/bin/python scripts/examples_manifest.py`"
    )


def test_the_manifest_serves_the_examples_in_persisted_only_mode(make_gateway):
    gw = make_gateway(persisted_documents=str(MANIFEST), persisted_only=True)
    digest = next(d for d, text in documents().items() if "query OrderItemCount" in text)
    body = gw.client.post(
        f"{gw.url}/graphql",
        json={"documentId": f"sha256:{digest}", "variables": {"orderNumber": "2021000002"}},
        headers={"Authorization": "Token demo-token"},
    ).json()
    assert body["data"]["orderItems"]["totalCount"] > 0


def test_codegen_maps_every_custom_scalar():
    schema = build_schema(SDL.read_text())
    custom = {
        name
        for name, t in schema.type_map.items()
        if isinstance(t, GraphQLScalarType)
        and name not in ("String", "Int", "Float", "Boolean", "ID")
    }
    codegen = (EXAMPLES / "codegen.ts").read_text()
    mapped = dict(re.findall(r"^\s+(\w+): '([^']+)',$", codegen, re.MULTILINE))
    assert custom == {"Decimal", "DateTime", "JSON"}
    assert {name: mapped.get(name) for name in custom} == {
        "Decimal": "string",  # never a number: that would round money
        "DateTime": "string",
        "JSON": "unknown",
    }
    assert "strictScalars: true" in codegen


def test_the_readme_explains_apollo_client_with_apq_over_get_and_relay_paging():
    readme = README
    assert "useGETForHashedQueries: true" in readme
    assert "relayStylePagination" in readme
    assert "examples/" in readme
