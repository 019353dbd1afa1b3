"""The stack's floor and the gateway on each upstream transport, in one run; writes BENCHMARKS.md.

Run from the repository root (about 3 minutes with the defaults; `bench/run.py --floor` runs it
after its own tables):

    .venv/bin/python bench/floor.py [--duration 5] [--transports httpx,aiohttp] [--no-workers]

For each transport (gateway/transports) it starts the fake OMS and `bench/proxy.py`, a pure-ASGI
proxy under uvicorn that forwards each GET through that transport and returns the bytes: the
floor. Then the gateway on the same transport. wrk drives the detail and the 50-item nested list
through both at concurrency 1, and `orderItemsByIds` with 20 ids through the gateway at 1 and
16; each server's CPU per request comes from /proc. Last, the gateway with `--workers 2` against
1 at concurrency 16. Every wrk run is bounded by `--duration`, the whole run has a time limit,
all traffic stays on 127.0.0.1, and every server is stopped in a `finally`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import (
    AUTH,
    BIN,
    HOST,
    INTRO,
    REPO,
    RESULTS,
    BenchTimeout,
    Servers,
    install_deadline,
    machine,
    own_cpu_seconds,
    replace_section,
)
from queries import case_by_key
from run import GENERIC, _gw_headers, ensure_wrk, lua_script, measure, run_wrk, settle

from gateway.settings import UPSTREAM_CLIENTS


@dataclass(slots=True)
class Run:
    server: str  # proxy | gateway
    transport: str
    workers: int
    query: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's CPU per request
    wrk_cores: float  # the load generator's CPU while it ran, in cores
    other_cores: float  # everyone else's
    errors: dict[str, int]


def drive(
    servers: Servers,
    wrk: str,
    args: argparse.Namespace,
    server: str,
    transport: str,
    workers: int,
    key: str,
    concurrency: int,
) -> Run:
    case = case_by_key(key)
    if server == "proxy":
        url = f"http://{HOST}:{servers.gateway_port}{case.direct_path}"
        script = lua_script(f"floor-proxy-{key}", "GET", None, {"Authorization": AUTH})
    else:
        url = f"http://{HOST}:{servers.gateway_port}/graphql"
        body = json.dumps({"query": case.query})
        script = lua_script(f"floor-gw-{key}", "POST", body, _gw_headers())
    if args.warmup > 0:
        run_wrk(wrk, url, script, concurrency, args.warmup, args.wrk_threads)
        settle(servers)
    wrk_before, started = own_cpu_seconds(), time.monotonic()
    w = measure(servers, "gateway", wrk, url, script, concurrency, args)
    wrk_cores = (own_cpu_seconds() - wrk_before) / (time.monotonic() - started)
    run = Run(
        server, transport, workers, key, concurrency, w.rps, w.p50_ms, w.p99_ms, w.cpu_ms,
        wrk_cores, w.other_cores, w.errors,
    )  # fmt: skip
    print(
        f"{server:7} {transport:7} w={workers} {key:12} c={concurrency:<3} {w.rps:8,.0f} req/s "
        f"cpu {w.cpu_ms:6.3f} ms/op  p50 {w.p50_ms:6.2f} ms  wrk {wrk_cores:.2f} cores  "
        f"other {w.other_cores:.2f} cores {w.errors or ''}",
        flush=True,
    )
    return run


def servers_for(server: str, transport: str, workers: int, code_dir: Path) -> Servers:
    env = {"OMS_UPSTREAM_CLIENT": transport}
    serve_args = ["--workers", str(workers)] if workers > 1 else []
    cmd = [str(BIN / "python"), str(REPO / "bench" / "proxy.py")] if server == "proxy" else None
    return Servers(serve_args, env, f"floor-{server}-{transport}", cmd, code_dir)


def measure_all(args: argparse.Namespace, wrk: str) -> list[Run]:
    runs: list[Run] = []
    plan: list[tuple[str, str, int, list[tuple[str, int]]]] = []
    for t in args.transports:
        plan.append(("proxy", t, 1, [("detail", 1), ("nested-list", 1)]))
        queries = [("detail", 1), ("nested-list", 1), ("by-ids", 1), ("by-ids", 16)]
        if not args.no_workers and t == args.recommended:
            queries += [("detail", 16), ("nested-list", 16)]
        plan.append(("gateway", t, 1, queries))
    if not args.no_workers:
        plan.append(("gateway", args.recommended, 2, [("detail", 16), ("nested-list", 16)]))
    for server, transport, workers, queries in plan:
        with servers_for(server, transport, workers, REPO) as servers:
            for key, concurrency in queries:
                runs.append(drive(servers, wrk, args, server, transport, workers, key, concurrency))
    return runs


def find(runs: list[Run], server: str, t: str, key: str, c: int = 1, w: int = 1) -> Run | None:
    for r in runs:
        if (r.server, r.transport, r.query, r.concurrency, r.workers) == (server, t, key, c, w):
            return r
    return None


def _row(goal: str, target: str, measured: str, ratio: float | None, met: bool | None) -> str:
    shown = "n/a" if ratio is None else f"{ratio:.2f}×"
    verdict = "" if met is None else ("met" if met else "not met")
    return f"| {goal} | {target} | {measured} | {shown} | {verdict} |"


def goals(runs: list[Run], args: argparse.Namespace) -> list[str]:
    rows = ["| goal | target | measured | ratio | met? |", "|---|---|---|---:|---|"]
    for t in args.transports:
        for key, bound in (("detail", 1.5), ("nested-list", 2.0)):
            g, f = find(runs, "gateway", t, key), find(runs, "proxy", t, key)
            if g and f:
                ratio = g.cpu_ms / f.cpu_ms
                measured = f"{g.cpu_ms:.3f} vs {f.cpu_ms:.3f} ms/op"
                rows.append(
                    _row(
                        f"{t}: {key} CPU, gateway ÷ floor",
                        f"≤{bound:g}×",
                        measured,
                        ratio,
                        ratio <= bound,
                    )  # fmt: skip
                )
    for key, times in (("detail", 3.0), ("nested-list", 5.0)):
        g = find(runs, "gateway", "aiohttp", key)
        if g:
            ref = GENERIC[key]["rps"]
            ratio = g.rps / ref
            rows.append(
                _row(
                    f"aiohttp: {key} req/s vs the generic gateway (c=1)",
                    f"≥{times:g}×",
                    f"{g.rps:,.0f} vs {ref:g} req/s",
                    ratio,
                    ratio >= times,
                )  # fmt: skip
            )
    for t in args.transports:
        one, many = find(runs, "gateway", t, "by-ids"), find(runs, "gateway", t, "by-ids", 16)
        if one and many:
            ratio = many.cpu_ms / one.cpu_ms
            rows.append(
                _row(
                    f"{t}: orderItemsByIds (20 ids) CPU/op, c=16 ÷ c=1",
                    "≤2×",
                    f"{many.cpu_ms:.2f} vs {one.cpu_ms:.2f} ms/op",
                    ratio,
                    ratio <= 2,
                )  # fmt: skip
            )
    for key in ("detail", "nested-list"):
        one = find(runs, "gateway", args.recommended, key, 16)
        two = find(runs, "gateway", args.recommended, key, 16, 2)
        if one and two:
            ratio = two.rps / one.rps
            measured = (
                f"{two.rps:,.0f} vs {one.rps:,.0f} req/s (wrk used {two.wrk_cores:.2f} / "
                f"{one.wrk_cores:.2f} cores, others {two.other_cores:.2f} / "
                f"{one.other_cores:.2f})"
            )
            rows.append(
                _row(f"{args.recommended}: {key} req/s, --workers 2 ÷ 1 (c=16)", "≥1.8× with "
                     "the cores for it", measured, ratio, ratio >= 1.8 if args.cores >= 4 else None)
            )  # fmt: skip
    return rows


def render(runs: list[Run], args: argparse.Namespace, command: str, info: dict[str, str]) -> str:
    out = [
        "## The floor: the gateway against its own stack, per upstream transport",
        "",
        f"`{command}` — {info['date']}, commit {info['commit']}, {info['nproc']} CPUs "
        f"({info['cpu']}), Python {info['python']}. The machine is shared: the last columns say "
        "how many cores wrk and other processes used during each run.",
        "",
        "The floor is `bench/proxy.py`: uvicorn, one GET through the transport, the bytes back. "
        "CPU is the server's (all its workers') user + system time per request, from /proc.",
        "",
        "| server | transport | workers | query | c | req/s | p50 ms | p99 ms | CPU ms/op "
        "| wrk cores | other cores |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        out.append(
            f"| {r.server} | {r.transport} | {r.workers} | {r.query} | {r.concurrency} | "
            f"{r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_ms:.3f} | "
            f"{r.wrk_cores:.2f} | {r.other_cores:.2f} |"
        )
    errors = [f"{r.server}/{r.transport}/{r.query}: {r.errors}" for r in runs if r.errors]
    out += ["", "wrk errors: " + ("; ".join(errors) if errors else "none (every response 2xx).")]
    out += ["", "### Goals, as ratios within this run", "", *goals(runs, args)]
    if args.cores < 4:
        out += [
            "",
            f"Scale-out is shown but not judged: this machine has {args.cores} CPUs for two "
            "workers, the fake OMS and wrk together.",
        ]
    return "\n".join(out) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up per run")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--transports", default=",".join(UPSTREAM_CLIENTS))
    p.add_argument("--recommended", default="aiohttp", help="the transport --workers 2 runs on")
    p.add_argument("--no-workers", action="store_true", help="skip --workers 2 against 1")
    p.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    args.transports = [t for t in args.transports.split(",") if t]
    if args.recommended not in args.transports:
        args.recommended = args.transports[0]
    args.cores = len(os.sched_getaffinity(0))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs_planned = 6 * len(args.transports) + (0 if args.no_workers else 4)
    install_deadline(runs_planned * (args.duration + args.warmup + 20) + 120)
    shown = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python", "bench/floor.py", *shown])
    wrk = ensure_wrk()
    info = machine()
    try:
        runs = measure_all(args, wrk)
    except BenchTimeout as exc:
        print(f"bench/floor.py: {exc}; servers stopped", file=sys.stderr)
        return 3
    report = render(runs, args, command, info)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = {"machine": info, "command": command, "runs": [asdict(r) for r in runs]}
    (RESULTS / f"floor-{stamp}.json").write_text(json.dumps(raw, indent=2))
    if not args.no_write:
        replace_section(args.output, "floor", report, INTRO)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
