"""Governance figures: what each crafted request of issue 9 costs a running gateway, and what
the worst documents the limits still admit cost, next to a legitimate operation.

    .venv/bin/python bench/governance.py attacks [--ref REF]    # the issue's attack table
    .venv/bin/python bench/governance.py admitted [--ref REF]   # CPU/request, RSS after 1,000

Every request goes to 127.0.0.1; every loop is bounded in count, and the whole run in time.
Each row runs on a fresh gateway subprocess, whose CPU (from /proc) and RSS are read around it.
`--ref 973c22d` measures the code before issue 9 from a clean `git archive` of that commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    AUTH,
    REPO,
    Reply,
    Servers,
    build_request,
    call,
    cpu_seconds,
    export_ref,
    install_deadline,
    raw_request,
    replace_section,
    rss_kb,
)

sys.path.insert(0, str(REPO))
from bench.queries import ITEM_FIELDS  # noqa: E402
from gateway.settings import Settings  # noqa: E402

JSON = "application/json"
MAX_PAGE = Settings().max_page_size  # the largest page one list field may ask for
NO_TOKEN: dict[str, str] = {}
WITH_TOKEN = {"Authorization": AUTH}

# --- the documents ---------------------------------------------------------------------------


def doubling(levels: int) -> str:
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return "{ ...F0 } " + " ".join(fragments) + f" fragment F{levels} on Query {{ __typename }}"


def introspection_aliases(schemas: int, types: int, fields: int) -> str:
    return (
        "{ " + " ".join(f"s{i}: __schema {{ ...S }}" for i in range(schemas)) + " } "
        "fragment S on __Schema { " + " ".join(f"t{i}: types {{ ...T }}" for i in range(types))
        + " } fragment T on __Type { " + " ".join(f"f{i}: fields {{ name }}" for i in range(fields))
        + " }"
    )  # fmt: skip


def typename_aliases(roots: int, typenames: int) -> str:
    items = " ".join(f"t{i}: __typename" for i in range(typenames))
    lists = " ".join(
        f"r{i}: orderItems(first: {MAX_PAGE}) {{ nodes {{ ...T }} }}" for i in range(roots)
    )
    return f"{{ {lists} }} fragment T on OrderItem {{ {items} }}"


def repeated(times: int, field: str) -> str:
    return "{ " + f"{field} " * times + "}"


LEGIT = (
    "query Example { nested: orderItems(first: 5) { totalCount pageInfo { hasNextPage endCursor }"
    ' nodes { id orderId price priceCurrency state { id enumValue name(locale: "tr-tr") }'
    " product { id name sku images { url } } } }"
    " slim: orderItems(first: 5) { nodes { id netAmount state { id } product { id } } }"
    " one: orderItem(id: 1) { price } some: orderItemsByIds(ids: [1, 7, 7, 999999]) { id } }"
)
# Near every limit at once, cheap to execute: about 2,000 tokens, 29 aliases, sets of ~40
# fields, depth 4, same-named fields that validation must compare.
WORST_DOCUMENT = (
    "{ "
    + " ".join(f"a{i}: orderItem(id: {1 + i % 3}) {{ ...I }}" for i in range(29))
    + " orderItem(id: 1) { id } orderItem(id: 1) { id price } } "
    + ITEM_FIELDS.replace("fragment ItemFields", "fragment I")
)
EXPANSION = doubling(12).replace("{ __typename }", "{ orderItems(first: 1) { totalCount } }")
WORST_VALIDATION = repeated(15, "orderItems { totalCount }")  # 900 comparisons of 1,000
WORST_ANSWER = (
    "{ "
    + " ".join(
        f"r{i}: orderItems(first: {MAX_PAGE}) {{ nodes {{ ...ItemFields }} }}" for i in range(30)
    )
    + " } "
    + ITEM_FIELDS
)

# --- measuring -------------------------------------------------------------------------------


def post(
    port: int, query: str, headers: dict[str, str], timeout: float = 600, **extra: Any
) -> Reply:
    body = json.dumps({"query": query, **extra}).encode()
    all_headers = {"Content-Type": "application/json", **headers}
    return raw_request(port, build_request("POST", port, "/graphql", body, all_headers), timeout)


def get(port: int, query: str, headers: dict[str, str], **params: str) -> Reply:
    target = "/graphql?" + urllib.parse.urlencode({"query": query, **params})
    return call(port, "GET", target, None, headers)


def outcome(reply: Reply) -> str:
    try:
        body = reply.json()
    except ValueError:
        return f"{reply.status}"
    codes = sorted({e.get("extensions", {}).get("code", "?") for e in body.get("errors", [])})
    return f"{reply.status} {','.join(codes) or 'ok'}"


class Row:
    """One measured row: the gateway's CPU and memory around `run`."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers

    def measure(self, run: Callable[[int], str]) -> dict[str, Any]:
        pgid = self.servers.gateway.pid
        before = rss_kb(pgid)
        cpu = cpu_seconds(pgid)
        started = time.perf_counter()
        note = run(self.servers.gateway_port)
        return {
            "cpu_s": round(cpu_seconds(pgid) - cpu, 2),
            "wall_s": round(time.perf_counter() - started, 2),
            "rss_before_mib": round(before["VmRSS"] / 1024),
            "rss_after_mib": round(rss_kb(pgid)["VmRSS"] / 1024),
            "peak_mib": round(rss_kb(pgid)["VmHWM"] / 1024),
            "note": note,
        }


# --- the attack table ------------------------------------------------------------------------


def attacks(full: bool) -> dict[str, tuple[bool, dict[str, str], Callable[[int], str]]]:
    """name -> (gateway has OMS_TOKEN, gateway env, the attack on a port)."""
    schemas, types, fields = (25, 60, 60) if full else (25, 6, 6)

    def once(query: str, headers: dict[str, str]) -> Callable[[int], str]:
        def run(port: int) -> str:
            reply = post(port, query, headers)
            return f"{outcome(reply)}, {len(reply.body) / 1e6:.2f} MB answer"

        return run

    def loop(make: Callable[[int], str], count: int, headers: dict[str, str]) -> Callable[..., str]:
        def run(port: int) -> str:
            results = {outcome(post(port, make(i), headers)) for i in range(count)}
            return f"{count} requests: {', '.join(sorted(results))}"

        return run

    def ghosts(port: int) -> str:
        for i in range(210):
            post(port, "query Real { __typename }", WITH_TOKEN, operationName=f"Ghost{i}")
        post(port, "query Real { __typename }", WITH_TOKEN)
        metrics = call(port, "GET", "/metrics").body.decode()
        real = 'operation="Real"' in metrics
        return f"after 210 ghost names, the real operation {'has' if real else 'lacks'} a label"

    def cached_answers(port: int) -> str:
        query = typename_aliases(28, 480)
        results = {outcome(get(port, query + f" # {i}", WITH_TOKEN)) for i in range(6)}
        time.sleep(6)  # past the 5 s TTL; one more write sweeps (after) or nothing does (before)
        get(port, "{ __typename }", WITH_TOKEN)
        return f"6 GETs: {', '.join(sorted(results))}; RSS read 6 s later"

    def cached_admitted(port: int) -> str:
        fields = "nodes { ...ItemFields }"
        results = set()
        for i in range(6):
            lists = " ".join(f"r{j}: orderItems(first: 300) {{ {fields} }}" for j in range(6))
            query = f"{{ {lists} }} # {i} {ITEM_FIELDS}"
            results.add(outcome(get(port, query, WITH_TOKEN)))
        time.sleep(6)
        get(port, "{ __typename }", WITH_TOKEN)
        return f"6 GETs: {', '.join(sorted(results))}; RSS read 6 s later"

    def hostile_auth(port: int) -> str:
        body = json.dumps({"query": "{ orderItem(id: 1) { id } }"}).encode()
        request = build_request("POST", port, "/graphql", body, {"Content-Type": JSON})
        head, rest = request.split(b"\r\n", 1)
        return outcome(raw_request(port, head + b"\r\nAuthorization: Token \xff\xfe\r\n" + rest))

    def deep_variables(port: int) -> str:
        value: Any = 1
        for _ in range(300):
            value = [value]
        variables = json.dumps({"v": value})
        return outcome(get(port, "{ __typename }", WITH_TOKEN, variables=variables))

    def past_the_end(port: int) -> str:
        query = "{ orderItems(first: 10, page: 99) { nodes { id } } }"
        return outcome(post(port, query, WITH_TOKEN))

    cache = {"OMS_RESPONSE_CACHE_TTL": "5"}
    return {
        "doubling chain, 20 levels over __typename (no token)": (
            False, {}, once(doubling(19), NO_TOKEN),
        ),
        f"introspection aliases {schemas}x{types}x{fields} through fragments": (
            False, {}, once(introspection_aliases(schemas, types, fields), NO_TOKEN),
        ),
        f"28 lists of {MAX_PAGE} x 480 __typename aliases (token)": (
            True, {}, once(typename_aliases(28, 480), WITH_TOKEN),
        ),
        "40 __typename aliases at the root": (
            True, {}, once("{ " + " ".join(f"t{i}: __typename" for i in range(40)) + " }",
                           WITH_TOKEN),
        ),
        "one field 490 times, a new comment each (x20)": (
            True, {}, loop(lambda i: repeated(490, "orderItems { totalCount }") + f" # {i}",
                           20, WITH_TOKEN),
        ),
        "60 distinct 8.7 KB documents, no token": (
            False, {}, loop(lambda i: typename_aliases(28, 480) + f" # {i}", 60, NO_TOKEN),
        ),
        "60 distinct admitted documents near every limit, no token": (
            False, {}, loop(lambda i: WORST_DOCUMENT + f" # {i}", 60, NO_TOKEN),
        ),
        "the same document failing validation (8 KB) x1000": (
            True, {}, loop(lambda i: "{ orderItem(id: 1) { nope } }" + " " * 8000, 1000,
                           WITH_TOKEN),
        ),
        "the same invalid document x1000": (
            True, {}, loop(lambda i: typename_aliases(28, 480).replace("__typename", "nope"),
                           1000, WITH_TOKEN),
        ),
        "TTL 5 s, six distinct large GET answers (the 28-list document)": (
            True, cache, cached_answers,
        ),
        "TTL 5 s, six distinct admitted GET answers (6 x 300 items, every field)": (
            True, cache, cached_admitted,
        ),
        "210 operationNames that select nothing": (True, {}, ghosts),
        "Authorization with bytes 0xff 0xfe": (True, {}, hostile_auth),
        "GET variables nested 300 deep, response cache on": (True, cache, deep_variables),
        "a page past the end, OMS_MAX_UPSTREAM_CALLS=1": (
            True, {"OMS_MAX_UPSTREAM_CALLS": "1"}, past_the_end,
        ),
    }  # fmt: skip


# --- the worst admitted documents ------------------------------------------------------------


def admitted(count: int) -> dict[str, tuple[bool, dict[str, str], Callable[[int], str]]]:
    def per_request(make: Callable[[int], str], n: int) -> Callable[[int], str]:
        def run(port: int) -> str:
            results = {outcome(post(port, make(i), WITH_TOKEN)) for i in range(n)}
            return f"{n} requests: {', '.join(sorted(results))}"

        return run

    from graphql import get_introspection_query

    graphiql = get_introspection_query(descriptions=True, input_value_deprecation=True)
    return {
        "legitimate: the README example, same document": (
            True, {}, per_request(lambda i: LEGIT, count),
        ),
        "legitimate: the README example, distinct documents": (
            True, {}, per_request(lambda i: LEGIT + f" # {i}", count),
        ),
        "worst document near every limit, distinct": (
            True, {}, per_request(lambda i: WORST_DOCUMENT + f" # {i}", count),
        ),
        "worst expansion: fragments doubling to 8,192 selections, distinct": (
            True, {}, per_request(lambda i: EXPANSION + f" # {i}", count // 10),
        ),
        "worst validation (900 comparisons), distinct": (
            True, {}, per_request(lambda i: WORST_VALIDATION + f" # {i}", count),
        ),
        "GraphiQL's introspection query, distinct": (
            True, {}, per_request(lambda i: graphiql + f" # {i}", count // 10),
        ),
        "worst answer: 30 aliases x 300 items, every field": (
            True, {}, per_request(lambda i: WORST_ANSWER, 3),
        ),
    }  # fmt: skip


def memory() -> str:
    """What a cached document keeps, by tracemalloc, in-process: the document cache's estimates
    (gateway/execution/executor.py) come from these figures."""
    import gc
    import tracemalloc

    from gateway.execution.executor import Executor, Prepared
    from gateway.settings import Settings
    from schema import make_schema

    executor = Executor(make_schema()._schema, Settings())
    executor.parse("{ __typename }")
    lines = [
        "| document | text bytes | selections | parse + validation kept | compiled variant |",
        "|---|---:|---:|---:|---:|",
    ]
    docs = {"the README example": LEGIT, "worst document": WORST_DOCUMENT}
    for name, query in docs.items():
        gc.collect()
        tracemalloc.start()
        kept = [executor.parse(query + f" # {i}") for i in range(20)]
        gc.collect()
        parsed = tracemalloc.get_traced_memory()[0] / 20
        tracemalloc.stop()
        prepared = [k for k in kept if isinstance(k, Prepared)]
        assert len(prepared) == 20, kept[0]
        gc.collect()
        tracemalloc.start()
        for k in prepared:
            operation = k.operation(None)
            executor.compiled(k, operation).variant(executor.coerce_variables(operation, {}))
        gc.collect()
        compiled = tracemalloc.get_traced_memory()[0] / 20
        tracemalloc.stop()
        size, selections = len(query), prepared[0].selections
        lines.append(
            f"| {name} | {size} | {selections} | {parsed / 1024:.0f} KiB "
            f"({parsed / size:.0f} B/byte) | {compiled / 1024:.0f} KiB "
            f"({compiled / selections:.0f} B/selection) |"
        )
    return "\n".join(lines) + "\n"


def run_table(
    rows: dict[str, tuple[bool, dict[str, str], Callable[[int], str]]], code_dir: Path
) -> list[tuple[str, dict[str, Any]]]:
    measured = []
    for name, (token, env, attack) in rows.items():
        servers = Servers(gateway_env=env, log_name="governance", code_dir=code_dir)
        servers.token = servers.token if token else None
        with servers:
            try:
                figures = Row(servers).measure(attack)
            except Exception as exc:  # a timeout or a crash is a figure too
                figures = {"note": f"{type(exc).__name__}: {exc}"[:200]}
        print(f"{name}: {figures}", flush=True)
        measured.append((name, figures))
    return measured


def markdown(title: str, rows: list[tuple[str, dict[str, Any]]], command: str) -> str:
    lines = [f"### {title}", "", f"`{command}`", ""]
    lines += [
        "| request | gateway CPU s | RSS before → after (peak) MiB | outcome |",
        "|---|---:|---|---|",
    ]
    for name, f in rows:
        rss = (
            f"{f['rss_before_mib']} → {f['rss_after_mib']} ({f['peak_mib']})"
            if "cpu_s" in f
            else "–"
        )
        lines.append(f"| {name} | {f.get('cpu_s', '–')} | {rss} | {f['note']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=("attacks", "admitted", "memory"))
    parser.add_argument("--ref", help="a commit to measure instead of the working tree")
    parser.add_argument("--full", action="store_true", help="the issue's full introspection size")
    parser.add_argument("--count", type=int, default=1000, help="documents per admitted row")
    parser.add_argument("--write-md", action="store_true", help="record it in BENCHMARKS.md")
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args()
    install_deadline(args.max_seconds)
    command = "python bench/governance.py " + " ".join(sys.argv[1:])
    if args.table == "memory":
        text = f"### Governance: what a cached document keeps\n\n`{command}`\n\n{memory()}"
        print(text)
        if args.write_md:
            replace_section(REPO / "BENCHMARKS.md", "governance-memory", text, "")
        return
    with export_ref(args.ref) as (code_dir, sha):
        rows = attacks(args.full) if args.table == "attacks" else admitted(args.count)
        measured = run_table(rows, code_dir)
    text = markdown(f"Governance: {args.table} at {sha or 'the working tree'}", measured, command)
    print(text)
    if args.write_md:
        # Any other ref is the code measured for comparison (973c22d: before issue 9).
        label = "after" if args.ref in (None, "HEAD") else "before"
        section = f"governance-{args.table}-{label}"
        replace_section(REPO / "BENCHMARKS.md", section, text, "")


if __name__ == "__main__":
    main()
