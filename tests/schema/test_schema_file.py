"""schema.graphql is the exported SDL; this fails when it is stale."""

from __future__ import annotations

from graphql import build_schema

from schema import make_schema
from tests.support import SDL


def test_schema_graphql_matches_the_printed_schema():
    assert SDL.read_text() == make_schema().as_str() + "\n", (
        "schema.graphql is stale: run `oms-gateway export-schema > schema.graphql`"
    )


def test_contract_names_and_types():
    sdl = build_schema(SDL.read_text())
    query = sdl.query_type.fields
    assert str(query["orderItem"].type) == "OrderItem"
    # Nullable roots: one failing root field leaves its siblings (a 0.x contract change).
    assert str(query["orderItems"].type) == "OrderItemConnection"
    assert str(query["orderItemsByIds"].type) == "[OrderItem]"
    assert set(query["orderItems"].args) == {
        "orderNumber",
        "first",
        "after",
        "last",
        "before",
        "page",
        "pageSize",
    }
    conn = sdl.type_map["OrderItemConnection"].fields
    assert {k: str(v.type) for k, v in conn.items()} == {
        "totalCount": "Int!",
        "pageInfo": "PageInfo!",
        "nodes": "[OrderItem!]!",
        "edges": "[OrderItemEdge!]!",
    }
    item = sdl.type_map["OrderItem"].fields
    assert str(item["orderId"].type) == "Int!"
    assert str(item["price"].type) == "Decimal"
    assert str(item["createdDate"].type) == "DateTime"
    assert str(sdl.type_map["Product"].fields["images"].type) == "[ProductImage!]!"
    assert str(sdl.type_map["PriceList"].fields["id"].type) == "ID!"
    assert str(sdl.type_map["State"].fields["name"].args["locale"].type) == "String"


def test_every_type_field_and_argument_is_described():
    sdl = build_schema(SDL.read_text())
    for name, gql_type in sdl.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Boolean", "ID", "Float"):
            continue
        assert gql_type.description, name
        for field_name, field in getattr(gql_type, "fields", {}).items():
            assert field.description, f"{name}.{field_name}"
            for arg_name, arg in field.args.items():
                assert arg.description, f"{name}.{field_name}({arg_name})"
