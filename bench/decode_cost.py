"""What JSON alone costs for each benchmarked upstream body: orjson decode, encode, both.

Run from the repository root (a few seconds):

    .venv/bin/python bench/decode_cost.py

It starts the fake OMS (and a gateway it does not use) on 127.0.0.1, fetches each query's
direct REST body once (`Case.direct_path`, identity encoding), and times in this process, on one
core, `orjson.loads` of the body, `orjson.dumps` of the result, and the two together: the least a
gateway that reads the upstream data and writes it back pays on top of forwarding bytes (the
floor proxy, bench/proxy.py, decodes nothing). Medians of `--repeat` timings of `--number` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from harness import Servers
from queries import case_by_key


def per_call_ms(fn: Callable[[], Any], number: int, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(number):
            fn()
        timings.append((time.process_time() - started) / number)
    return statistics.median(timings) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--queries", default="detail,nested-list")
    p.add_argument("--number", type=int, default=200)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    with Servers(log_name="decode-cost") as servers:
        bodies = {
            k: servers.direct(case_by_key(k).direct_path).body for k in args.queries.split(",")
        }
    print("| body | bytes | decode ms | encode ms | decode + encode ms |")
    print("|---|---:|---:|---:|---:|")
    for key, body in bodies.items():
        value = orjson.loads(body)
        n, r = args.number, args.repeat
        loads = per_call_ms(lambda b=body: orjson.loads(b), n, r)
        dumps = per_call_ms(lambda v=value: orjson.dumps(v), n, r)
        both = per_call_ms(lambda b=body: orjson.dumps(orjson.loads(b)), n, r)
        print(f"| {key} | {len(body):,} | {loads:.3f} | {dumps:.3f} | {both:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
