"""Bad input, table-driven: each case gets its precise HTTP status and codes, and no upstream call.

A case is (request, status, codes): `codes` is the exact list of `extensions.code` values when it
is a list, or the set of codes that must all be present when it is a set (documents that break
several rules at once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.errors import ErrorCode
from tests.conftest import AUTH

ITEM = "query($id: ID!) { orderItem(id: $id) { id } }"
FIRST = "query($f: Int) { orderItems(first: $f) { totalCount } }"
IDS = "query($ids: [ID!]!) { orderItemsByIds(ids: $ids) { id } }"
HASH = "0" * 64


@dataclass
class Req:
    method: str = "POST"
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def q(query: str, variables: Any = None, **extra: Any) -> Req:
    body: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return Req(json=body)


def raw(content: bytes, content_type: str = "application/json") -> Req:
    return Req(content=content, headers={"Content-Type": content_type})


def get(**params: str) -> Req:
    return Req(method="GET", params=params)


def nested(depth: int) -> str:
    inner = "id"
    for level in range(depth - 2):
        inner = f"f{level} {{ {inner} }}"
    return f"{{ orderItem(id: 1) {{ {inner} }} }}"


def fragment_bomb() -> str:
    fragments = [f"fragment F{i} on OrderItem {{ {f'...F{i + 1} ' * 6} }}" for i in range(9)]
    return (
        "{ orderItem(id: 1) { ...F0 } } " + " ".join(fragments) + " fragment F9 on OrderItem { id }"
    )


BAD = ErrorCode.BAD_USER_INPUT
INVALID = ErrorCode.GRAPHQL_VALIDATION_FAILED
PARSE = ErrorCode.GRAPHQL_PARSE_FAILED
REQUEST = ErrorCode.BAD_REQUEST

CASES: dict[str, tuple[Req, int, list[str] | set[str]]] = {
    # --- bombs
    # The limits are checked before validation, which never sees a document over them.
    "depth bomb": (q(nested(40)), 400, [ErrorCode.DEPTH_LIMIT]),
    "alias bomb": (
        q("{ " + " ".join(f"a{i}: orderItem(id: 1) {{ id }}" for i in range(60)) + " }"),
        400,
        [ErrorCode.ALIAS_LIMIT],
    ),
    "token bomb": (
        q("{ orderItem(id: 1) { " + "id " * 20000 + "} }"),
        400,
        [ErrorCode.TOKEN_LIMIT],
    ),
    "directive bomb": (
        q("{ orderItem(id: 1) { " + "id @skip(if: false) " * 60 + "} }"),
        400,
        {ErrorCode.DIRECTIVE_LIMIT},
    ),
    "fragment bomb": (q(fragment_bomb()), 400, [ErrorCode.SELECTION_LIMIT]),
    "deeply nested list literal": (
        q("{ orderItemsByIds(ids: " + "[" * 900 + "1" + "]" * 900 + ") { id } }"),
        400,
        [PARSE],
    ),
    "deeply nested selections": (
        q("{ orderItem(id: 1) " + "{ a " * 600 + "}" * 601 + " }"),
        400,
        [PARSE],
    ),
    "cost bomb by ids": (
        q(
            "query($ids: [ID!]!) { a: orderItemsByIds(ids: $ids) { id } b: orderItem(id: 21) { id } }",
            {"ids": list(range(1, 21))},
        ),
        400,
        [ErrorCode.COST_LIMIT],
    ),
    "cost bomb by aliases": (
        q("{ " + " ".join(f"a{i}: orderItem(id: {i + 1}) {{ id }}" for i in range(25)) + " }"),
        400,
        [ErrorCode.COST_LIMIT],
    ),
    "too many ids": (q(IDS, {"ids": ["1"] * 101}), 200, [BAD]),
    # --- sizes and numbers
    "huge first": (q("{ orderItems(first: 100000) { totalCount } }"), 200, [BAD]),
    "huge first variable": (q(FIRST, {"f": 501}), 200, [BAD]),
    "huge pageSize": (q("{ orderItems(pageSize: 501) { totalCount } }"), 200, [BAD]),
    "first beyond Int": (q("{ orderItems(first: 2147483648) { totalCount } }"), 400, [INVALID]),
    "variable beyond Int": (q(FIRST, {"f": 2**40}), 400, [BAD]),
    "negative first": (q("{ orderItems(first: -1) { totalCount } }"), 200, [BAD]),
    "zero pageSize": (q("{ orderItems(pageSize: 0) { totalCount } }"), 200, [BAD]),
    "zero page": (q("{ orderItems(page: 0) { totalCount } }"), 200, [BAD]),
    "negative page": (q("{ orderItems(page: -5, pageSize: 5) { totalCount } }"), 200, [BAD]),
    "first and pageSize disagree": (
        q("{ orderItems(first: 5, pageSize: 6) { totalCount } }"),
        200,
        [BAD],
    ),
    "after and page together": (
        q('{ orderItems(after: "b2k6Mw==", page: 2) { totalCount } }'),
        200,
        [BAD],
    ),
    "cursor not ours": (q('{ orderItems(after: "garbage!") { totalCount } }'), 200, [BAD]),
    "cursor of another shape": (q('{ orderItems(after: "eDo1") { totalCount } }'), 200, [BAD]),
    # --- ids
    "non-numeric id": (q('{ orderItem(id: "abc") { id } }'), 200, [BAD]),
    "path in id": (q('{ orderItem(id: "1/../2") { id } }'), 200, [BAD]),
    "negative id": (q("{ orderItem(id: -4) { id } }"), 200, [BAD]),
    "exponent id": (q('{ orderItem(id: "1e3") { id } }'), 200, [BAD]),
    "hex id": (q('{ orderItem(id: "0x10") { id } }'), 200, [BAD]),
    "empty id": (q('{ orderItem(id: "") { id } }'), 200, [BAD]),
    "full-width digit id": (q('{ orderItem(id: "１") { id } }'), 200, [BAD]),
    "overlong id": (q(ITEM, {"id": "9" * 40}), 200, [BAD]),
    "huge id": (q(ITEM, {"id": "9" * 60000}), 200, [BAD]),
    "query string in id": (q(ITEM, {"id": "1?limit=1000"}), 200, [BAD]),
    "only bad ids": (q(IDS, {"ids": ["x", "0"]}), 200, [BAD, BAD]),
    # A defaulted variable sent as null, where its argument is non-null: the field fails alone
    # (the budget counted nothing for it, where it once raised a 500).
    "null for a non-null argument": (
        q('query($i: ID = "1") { orderItem(id: $i) { id } }', {"i": None}),
        200,
        [BAD],
    ),
    "float id literal": (q("{ orderItem(id: 1.5) { id } }"), 400, [INVALID]),
    # --- documents
    "unknown field": (q("{ orderItem(id: 1) { nope } }"), 400, [INVALID]),
    "unknown root field": (q("{ orders { id } }"), 400, [INVALID]),
    "unknown argument": (q("{ orderItem(id: 1, limit: 5) { id } }"), 400, [INVALID]),
    "missing argument": (q("{ orderItem { id } }"), 400, [INVALID]),
    "leaf with selection": (q("{ orderItem(id: 1) { id { x } } }"), 400, [INVALID]),
    "object without selection": (q("{ orderItem(id: 1) }"), 400, [INVALID]),
    "undefined variable": (q("{ orderItem(id: $x) { id } }"), 400, [INVALID]),
    "unused variable": (q("query($x: Int) { __typename }"), 400, [INVALID]),
    "unknown variable type": (q("query($x: Long) { orderItem(id: $x) { id } }"), 400, {INVALID}),
    "variable in wrong position": (
        q("query($x: String!) { orderItem(id: $x) { id } }", {"x": "1"}),
        400,
        [INVALID],
    ),
    "unknown directive": (q("{ orderItem(id: 1) @cached { id } }"), 400, [INVALID]),
    "fragment cycle": (
        q(
            "{ orderItem(id: 1) { ...A } } fragment A on OrderItem { ...B } "
            "fragment B on OrderItem { ...A }"
        ),  # fmt: skip
        400,
        {INVALID},
    ),
    "subscription": (q("subscription { orderItem(id: 1) { id } }"), 400, [INVALID]),
    "mutation": (q("mutation { orderItem(id: 1) { id } }"), 400, [INVALID]),
    "syntax error": (q("{ orderItem(id: 1) { id }"), 400, [PARSE]),
    "NUL character": (q("{ orderItem(id: 1) { id\u0000 } }"), 400, [PARSE]),
    "blank document": (q("   "), 400, [PARSE]),
    "empty query": (q(""), 400, [REQUEST]),
    "two operations, no name": (q("query A { __typename } query B { __typename }"), 400, [REQUEST]),
    "unknown operation name": (q("query A { __typename }", operationName="B"), 400, [REQUEST]),
    # --- variables
    "string for Int": (q(FIRST, {"f": "ten"}), 400, [BAD]),
    "float for Int": (q(FIRST, {"f": 1.5}), 400, [BAD]),
    "bool for Int": (q(FIRST, {"f": True}), 400, [BAD]),
    "object for ID": (q(ITEM, {"id": {"a": 1}}), 400, [BAD]),
    "list for ID": (q(ITEM, {"id": [1]}), 400, [BAD]),
    "bool for ID": (q(ITEM, {"id": True}), 400, [BAD]),
    "null in a list of ID!": (q(IDS, {"ids": [None]}), 400, [BAD]),
    "missing required variable": (q(ITEM, {}), 400, [BAD]),
    "null required variable": (q(ITEM, {"id": None}), 400, [BAD]),
    "null `if:` through a nullable variable": (
        q("query($b: Boolean = true) { orderItem(id: 1) @skip(if: $b) { id } }", {"b": None}),
        200,
        [BAD],
    ),
    "no variables at all": (q(ITEM), 400, [BAD]),
    "variables a list": (q(ITEM, [1]), 400, [REQUEST]),
    "variables a string of a list": (q(ITEM, "[1]"), 400, [REQUEST]),
    "variables a string, not JSON": (q(ITEM, "id=1"), 400, [REQUEST]),
    "variables a number": (q(ITEM, 7), 400, [REQUEST]),
    "variables nested 5000 deep": (
        raw(b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"),
        400,
        [REQUEST],
    ),
    # --- the body
    "invalid JSON": (raw(b'{"query": "{ __typename }"'), 400, [REQUEST]),
    "empty body": (raw(b""), 400, [REQUEST]),
    "invalid UTF-8": (raw(b'{"query": "{ __typename }", "x": "\xff\xfe"}'), 400, [REQUEST]),
    "JSON null": (raw(b"null"), 400, [REQUEST]),
    "JSON number": (raw(b"5"), 400, [REQUEST]),
    "JSON string": (raw(b'"{ __typename }"'), 400, [REQUEST]),
    "JSON array (batching off)": (
        Req(json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}]),
        400,
        [ErrorCode.BATCHING_NOT_SUPPORTED],
    ),
    "no query": (Req(json={"variables": {}}), 400, [REQUEST]),
    "query a number": (Req(json={"query": 5}), 400, [REQUEST]),
    "query a list": (Req(json={"query": ["{ __typename }"]}), 400, [REQUEST]),
    "operationName a number": (q("{ __typename }", operationName=5), 400, [REQUEST]),
    "extensions a list": (q("{ __typename }", extensions=[1]), 400, [REQUEST]),
    "persisted query bad hash": (
        q("{ __typename }", extensions={"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}),
        400,
        [REQUEST],
    ),
    "persisted query version 2": (
        q("{ __typename }", extensions={"persistedQuery": {"version": 2, "sha256Hash": HASH}}),
        400,
        [ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED],
    ),
    "body over 64 KiB": (
        raw(json.dumps({"query": "{ __typename }" + " " * 70000}).encode()),
        413,
        [ErrorCode.PAYLOAD_TOO_LARGE],
    ),
    # --- content types (the CSRF defence: no form can send JSON)
    "text/plain": (
        raw(b'{"query": "{ __typename }"}', "text/plain"),
        415,
        [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    ),
    "form urlencoded": (
        Req(
            content=b"query=%7B+__typename+%7D",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
        [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    ),
    "multipart": (
        raw(b"--x\r\n\r\n{}\r\n--x--", "multipart/form-data; boundary=x"),
        415,
        [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    ),
    "application/graphql": (
        raw(b"{ __typename }", "application/graphql"),
        415,
        [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    ),
    "no content type": (
        Req(content=b'{"query": "{ __typename }"}'),
        415,
        [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
    ),
    # --- GET
    "GET without query": (get(), 400, [REQUEST]),
    "GET variables not JSON": (get(query=ITEM, variables="{id: 1"), 400, [REQUEST]),
    "GET variables a list": (get(query=ITEM, variables="[1]"), 400, [REQUEST]),
    "GET extensions not JSON": (get(query="{ __typename }", extensions="{"), 400, [REQUEST]),
    "GET with a mutation": (
        get(query="mutation { orderItem(id: 1) { id } }"),
        405,
        [ErrorCode.METHOD_NOT_ALLOWED],
    ),
    "GET with a named mutation among queries": (
        get(
            query="query Q { __typename } mutation M { orderItem(id: 1) { id } }",
            operationName="M",
        ),
        405,
        [ErrorCode.METHOD_NOT_ALLOWED],
    ),
    "GET with a subscription": (
        get(query="subscription { orderItem(id: 1) { id } }"),
        405,
        [ErrorCode.METHOD_NOT_ALLOWED],
    ),
}


def _cases():
    for name, case in CASES.items():
        yield pytest.param(*case, id=name)


def send(gateway, request: Req):
    headers = {**AUTH, **request.headers}
    url = f"{gateway.url}/graphql"
    if request.method == "GET":
        return gateway.client.get(url, params=request.params or {}, headers=headers)
    if request.json is not None:
        return gateway.client.post(url, json=request.json, headers=headers)
    return gateway.client.post(url, content=request.content or b"", headers=headers)


@pytest.mark.parametrize(("request_", "status", "expected"), list(_cases()))
def test_bad_input(gateway, upstream, request_, status, expected):
    response = send(gateway, request_)
    assert response.status_code == status, response.text
    body = response.json()
    codes = [e["extensions"]["code"] for e in body["errors"]]
    if isinstance(expected, set):
        assert expected <= set(codes), codes
    else:
        assert codes == expected, body["errors"]
    if status == 405:
        assert response.headers["allow"] == "POST"
    if status == 200:  # an argument error: the field (or its slots) null, the operation ran
        values = (body["data"] or {}).values()
        assert all(v is None or (isinstance(v, list) and not any(v)) for v in values)
    else:
        assert "data" not in body
    assert upstream.calls() == 0, upstream.fake.stats()["log"][:3]


def test_the_table_is_large():
    print(f"\nbad-input cases: {len(CASES)}")
    assert len(CASES) >= 90


def test_id_zero_never_reaches_upstream(gateway, upstream):
    body = gateway.post("{ orderItem(id: 0) { id } }").json()
    assert body["errors"][0]["extensions"]["code"] == ErrorCode.BAD_USER_INPUT
    assert upstream.calls() == 0


def test_oversized_body_without_content_length_is_413(gateway, upstream):
    def chunks():
        for _ in range(80):
            yield b" " * 1024

    response = gateway.client.post(
        f"{gateway.url}/graphql",
        content=chunks(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.PAYLOAD_TOO_LARGE
    assert upstream.calls() == 0


def test_good_input_still_works_after_the_table(gateway, upstream):
    assert gateway.data(ITEM, {"id": "07"}) == {"orderItem": {"id": "7"}}
    assert upstream.calls() == 1
