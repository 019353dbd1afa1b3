"""CPU of the compiled projection alone: one query's projector over the fake's decoded page.

Run from the repository root (a few seconds per revision):

    .venv/bin/python bench/projector.py --ref HEAD --compare main

The finest of the benches: no server, no upstream call, no encoding; only the generated code
that turns the decoded upstream page into the response's data (gateway/execution/compiled.py).
Each measurement is a child process running one revision (a clean `git archive` with `--ref`)
that fetches the page once, compiles the query's projector and times the best of `--rounds`
rounds of `--number` projections; revisions alternate `--pairs` times. Compare as ratios
within one run, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import AUTH, BIN, HOST, REPO, call, export_ref, free_port
from queries import case_by_key


def child(code_dir: str, key: str, port: int, number: int, rounds: int) -> float:
    """Microseconds per projection of `key`'s page, best of `rounds`, in this process."""
    sys.path.insert(0, code_dir)
    import orjson
    from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse
    from graphql.execution.values import VariableValues

    from gateway.execution.compiled import CompiledOperation
    from gateway.upstream.client import SIMPLE_BY_ID
    from resolvers.plan import OperationPlans
    from schema import make_schema

    case = case_by_key(key)
    document = parse(case.query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    plans = OperationPlans(make_schema()._schema, fragments, operation)
    variant = CompiledOperation(plans).variant(VariableValues({}, {}))
    if isinstance(variant, str):
        raise RuntimeError(f"{key} does not compile: {variant}")
    [root] = variant.roots
    reply = call(port, "GET", case.direct_path, None, {"Authorization": AUTH})
    page = orjson.loads(reply.body)
    for item in page["results"]:
        for name in SIMPLE_BY_ID:  # as the client shapes a list-simple page
            if type(item[name]) is int:
                item[name] = {"id": item[name]}

    class Connection:  # what the list's fetch hands the projector: its nodes
        nodes = page["results"]

    value = Connection()
    root.complete(value)
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            root.complete(value)
        best = min(best, (time.perf_counter() - started) / number)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--queries", default="nested-list,slim-list")
    p.add_argument("--number", type=int, default=200, help="projections per round")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--ref", help="measure this git revision (a clean export), not the tree")
    p.add_argument("--compare", help="also measure this revision, alternating")
    p.add_argument("--pairs", type=int, default=3, help="with --compare: alternations")
    p.add_argument("--child", nargs=2, metavar=("CODE_DIR", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        code_dir, port = args.child
        us = child(code_dir, args.queries, int(port), args.number, args.rounds)
        print("PROJECTOR " + json.dumps(us))
        return 0
    port = free_port()
    fake = subprocess.Popen(
        [str(BIN / "python"), "-m", "gateway.cli", "fake-upstream", "--host", HOST,
         "--port", str(port)],
        cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if call(port, "GET", "/__fake__/stats").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        refs = [args.ref, args.compare] if args.compare else [args.ref]
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.pairs if args.compare else 1):
            for ref in refs:
                with export_ref(ref) as (code_dir, sha):
                    for key in args.queries.split(","):
                        us = measure(code_dir, key, port, args)
                        name = sha or "tree"
                        best[(name, key)] = min(best.get((name, key), us), us)
                        print(f"{name:8} {key:12} µs/projection {us:.1f}", flush=True)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print("\n| revision | query | µs per projection, best |")
    print("|---|---|---:|")
    for (name, key), us in best.items():
        print(f"| {name} | {key} | {us:.1f} |")
    return 0


def measure(code_dir: Path, key: str, port: int, args: argparse.Namespace) -> float:
    cmd = [
        str(BIN / "python"), __file__, "--child", str(code_dir), str(port), "--queries", key,
        "--number", str(args.number), "--rounds", str(args.rounds),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PROJECTOR ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child failed ({done.returncode}): {done.stderr[-800:]}")
    us: float = json.loads(lines[-1].removeprefix("PROJECTOR "))
    return us


if __name__ == "__main__":
    raise SystemExit(main())
