"""The stack's floor and the gateway on each upstream transport, in one run; writes BENCHMARKS.md.

Run from the repository root (about 3 minutes with the defaults; `bench/run.py --floor` runs it
after its own tables):

    .venv/bin/python bench/floor.py [--duration 5] [--transports httpx,aiohttp] [--no-workers]
    .venv/bin/python bench/floor.py --rounds 3 --no-workers   # medians of 3 rounds, and each
    .venv/bin/python bench/floor.py --ref HEAD --compare main --rounds 2   # before/after
    .venv/bin/python bench/floor.py --scale-out --rounds 3 --no-write     # --workers 2 vs 1
    .venv/bin/python bench/floor.py --generic --rounds 3 --duration 4     # vs a generic gateway


For each transport (gateway/transports) it starts the fake OMS and `bench/proxy.py`, a pure-ASGI
proxy under uvicorn that forwards each GET through that transport and returns the bytes: the
floor; and the same proxy with `--decode` (`proxy+json`), which also parses and re-serializes the
upstream JSON, the floor of any gateway that reads the data. Then the gateway on the same
transport. wrk drives the detail and the 50-item nested list
through both at concurrency 1, and `orderItemsByIds` with 20 ids through the gateway at 1 and
16; each server's CPU per request comes from /proc. Last, the gateway with `--workers 2` against
1 at concurrency 16 (`--scale-out` runs only that, alternating for `--rounds`, and says how the
cores were shared among the gateway, the fake OMS, wrk and everyone else). Every wrk run is
bounded by `--duration`, the whole run has a time limit, all traffic stays on 127.0.0.1, and
every server is stopped in a `finally`.

`--generic` runs ours (each transport) against a generic GraphQL gateway (GraphQL Mesh
composed, served by Hive Gateway, bench/generic/ and bench/generic_gw.py) and each transport's
floors (proxy, proxy+json), all on one fake OMS, the detail and the 50-item nested list at c=1
and 16, interleaved in `--rounds` rounds, after checking that each gateway answers the same data
and counting its upstream calls; the goals against the generic gateway are judged only on such
a run, next to the floor goals and the ceiling (the floor proxy's req/s over the generic's).
It needs node and npm (it runs `npm ci` itself when they are there, and otherwise says how to
install them).

`--ref REV` measures a clean `git archive` of a revision (gateway and transports alike, so each
revision is judged against its own floor). `--compare REV` measures a second revision in the
same run, the two interleaved for `--rounds N` rounds (without `--workers 2`), and writes a
before/after table of the goals' ratios (medians over the rounds) instead of the floor table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import generic_gw
from harness import (
    AUTH,
    BIN,
    HOST,
    INTRO,
    REPO,
    RESULTS,
    BenchTimeout,
    Servers,
    export_ref,
    install_deadline,
    machine,
    replace_section,
)
from queries import case_by_key, count_items
from run import PREWARM_SECONDS, _gw_headers, ensure_wrk, lua_script, measure, run_wrk, settle

from gateway.settings import UPSTREAM_CLIENTS


@dataclass(slots=True)
class Run:
    server: str  # proxy | proxy+json | gateway
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
    ref: str = ""  # the revision measured ("" : the working tree)
    upstream_cpu_ms: float = 0.0  # the fake OMS's CPU per request

    @property
    def cores(self) -> float:
        """The cores the server kept busy: its req/s times its CPU seconds per request."""
        return self.rps * self.cpu_ms / 1000


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
    if server.startswith("proxy"):
        url = f"http://{HOST}:{servers.gateway_port}{case.direct_path}"
        script = lua_script(f"floor-proxy-{key}", "GET", None, {"Authorization": AUTH})
    else:  # ours, or the generic gateway with its spelling of the same operation
        url = f"http://{HOST}:{servers.gateway_port}/graphql"
        query = generic_gw.generic_query(key) if server == GENERIC else case.query
        body = json.dumps({"query": query})
        script = lua_script(f"floor-{server}-{transport}-{key}", "POST", body, _gw_headers())
    if args.warmup > 0:
        run_wrk(wrk, url, script, concurrency, args.warmup, args.wrk_threads)
        settle(servers)
    # The proxy runs in the gateway's place, so "gateway" is the server under test either way.
    w = measure(servers, "gateway", wrk, url, script, concurrency, args)
    wrk_cores = w.wrk_cores  # over the wrk run alone, as the servers' and the others' cores are
    run = Run(
        server, transport, workers, key, concurrency, w.rps, w.p50_ms, w.p99_ms, w.cpu_ms,
        wrk_cores, w.other_cores, w.errors, upstream_cpu_ms=w.upstream_cpu_ms,
    )  # fmt: skip
    print(
        f"{server:10} {transport:7} w={workers} {key:12} c={concurrency:<3} {w.rps:8,.0f} req/s "
        f"cpu {w.cpu_ms:6.3f} ms/op  p50 {w.p50_ms:6.2f} ms  wrk {wrk_cores:.2f} cores  "
        f"other {w.other_cores:.2f} cores {w.errors or ''}",
        flush=True,
    )
    return run


def servers_for(server: str, transport: str, workers: int, code_dir: Path) -> Servers:
    env = {"OMS_UPSTREAM_CLIENT": transport}
    serve_args = ["--workers", str(workers)] if workers > 1 else []
    cmd = None
    if server != "gateway":  # this tree's proxy, on `code_dir`'s transports (PYTHONPATH)
        cmd = [str(BIN / "python"), str(REPO / "bench" / "proxy.py")]
        cmd += ["--decode"] if server == "proxy+json" else []
    name = f"floor-{server.replace('+', '-')}-{transport}"
    return Servers(serve_args, env, name, cmd, code_dir)


SCALE_OUT = [("detail", 16), ("nested-list", 16)]
# The generic gateway (bench/generic_gw.py): its `server` and `transport` in the runs.
GENERIC, MESH = "generic", "mesh"
# The goals against it: our throughput (aiohttp) at least this many times its own.
GENERIC_GOALS = (("detail", 3.0), ("nested-list", 5.0))
GENERIC_CONCURRENCY = (1, 16)
# Throughput is what a server serves when it is kept busy, so the goals are judged at c=16, and
# only when both servers were: each used at least SATURATED cores (req/s x CPU per request).
# At c=1 req/s is one over a round trip that also holds the fake OMS's and wrk's time, in series
# and the same for both: a latency, which the tables show but the goals do not judge.
GENERIC_JUDGED_AT = 16
SATURATED = 0.9


def plan_for(args: argparse.Namespace) -> list[tuple[str, str, int, list[tuple[str, int]]]]:
    plan: list[tuple[str, str, int, list[tuple[str, int]]]] = []
    if args.scale_out:  # only the gateway, one worker then two, on the recommended transport
        return [("gateway", args.recommended, w, list(SCALE_OUT)) for w in (1, 2)]
    for t in args.transports:
        plan.append(("proxy", t, 1, [("detail", 1), ("nested-list", 1)]))
        plan.append(("proxy+json", t, 1, [("detail", 1), ("nested-list", 1)]))
        queries = [("detail", 1), ("nested-list", 1), ("by-ids", 1), ("by-ids", 16)]
        if not args.no_workers and t == args.recommended:
            queries += [("detail", 16), ("nested-list", 16)]
        plan.append(("gateway", t, 1, queries))
    if not args.no_workers:
        plan.append(("gateway", args.recommended, 2, [("detail", 16), ("nested-list", 16)]))
    if args.queries:  # a subset, e.g. to compare two revisions quickly
        plan = [(s, t, w, [q for q in qs if q[0] in args.queries]) for s, t, w, qs in plan]
    return [step for step in plan if step[3]]


def measure_all(args: argparse.Namespace, wrk: str, code_dir: Path, ref: str = "") -> list[Run]:
    runs: list[Run] = []
    for server, transport, workers, queries in plan_for(args):
        with servers_for(server, transport, workers, code_dir) as servers:
            for key, concurrency in queries:
                run = drive(servers, wrk, args, server, transport, workers, key, concurrency)
                run.ref = ref
                runs.append(run)
    return runs


def medians(runs: list[Run]) -> list[Run]:
    """One run per (server, transport, workers, query, c): the median of each figure."""
    groups: dict[tuple[str, str, int, str, int], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.server, r.transport, r.workers, r.query, r.concurrency), []).append(r)
    out = []
    for (server, t, w, q, c), rs in groups.items():
        med = {
            name: statistics.median(getattr(r, name) for r in rs)
            for name in (
                "rps",
                "p50_ms",
                "p99_ms",
                "cpu_ms",
                "wrk_cores",
                "other_cores",
                "upstream_cpu_ms",
            )
        }
        errors: dict[str, int] = {}
        for r in rs:
            for k, v in r.errors.items():
                errors[k] = errors.get(k, 0) + v
        out.append(Run(server, t, w, q, c, errors=errors, ref=rs[0].ref, **med))
    return out


def find(runs: list[Run], server: str, t: str, key: str, c: int = 1, w: int = 1) -> Run | None:
    for r in runs:
        if (r.server, r.transport, r.query, r.concurrency, r.workers) == (server, t, key, c, w):
            return r
    return None


def _row(goal: str, target: str, measured: str, ratio: float | None, met: bool | None) -> str:
    shown = "n/a" if ratio is None else f"{ratio:.2f}×"
    verdict = "" if met is None else ("met" if met else "not met")
    return f"| {goal} | {target} | {measured} | {shown} | {verdict} |"


def paired(
    runs: list[Run], rounds: list[list[Run]] | None, ratio: Callable[[list[Run]], float | None]
) -> float | None:
    """`ratio` of the runs; with rounds, the median of each round's own ratio. Its two runs were
    measured minutes apart in the same round, whereas a ratio of medians may pair figures from
    different rounds and fall outside every round's ratio."""
    if not rounds:
        return ratio(runs)
    each = [r for r in (ratio(one) for one in rounds) if r is not None]
    return statistics.median(each) if each else None


def _over(
    a: tuple[str | int, ...], b: tuple[str | int, ...], field: str
) -> Callable[[list[Run]], float | None]:
    """The ratio of `field` of the run `a` names over the run `b` names (find's arguments)."""

    def ratio(runs: list[Run]) -> float | None:
        x, y = find(runs, *a), find(runs, *b)
        return getattr(x, field) / getattr(y, field) if x and y else None

    return ratio


def goals(
    runs: list[Run], args: argparse.Namespace, rounds: list[list[Run]] | None = None
) -> list[str]:
    """The goals' table; `runs` are medians (or one run), `rounds` each round's runs."""
    rows = ["| goal | target | measured | ratio | met? |", "|---|---|---|---:|---|"]
    for t in args.transports:
        for key, bound in (("detail", 1.5), ("nested-list", 2.0)):
            g, f = find(runs, "gateway", t, key), find(runs, "proxy", t, key)
            if g and f:
                ratio = paired(
                    runs, rounds, _over(("gateway", t, key), ("proxy", t, key), "cpu_ms")
                )
                measured = f"{g.cpu_ms:.3f} vs {f.cpu_ms:.3f} ms/op"
                rows.append(
                    _row(
                        f"{t}: {key} CPU, gateway ÷ floor",
                        f"≤{bound:g}×",
                        measured,
                        ratio,
                        ratio is not None and ratio <= bound,
                    )  # fmt: skip
                )
    for t in args.transports:
        g, f = find(runs, "gateway", t, "nested-list"), find(runs, "proxy+json", t, "nested-list")
        if g and f:
            over = _over(("gateway", t, "nested-list"), ("proxy+json", t, "nested-list"), "cpu_ms")
            ratio = paired(runs, rounds, over)
            rows.append(
                _row(
                    f"{t}: nested-list CPU, gateway ÷ floor that decodes and re-encodes (restated)",
                    "≤2×",
                    f"{g.cpu_ms:.3f} vs {f.cpu_ms:.3f} ms/op",
                    ratio,
                    ratio is not None and ratio <= 2,
                )  # fmt: skip
            )
    for key, times in GENERIC_GOALS:
        rows.append(_generic_goal(runs, rounds, key, times))
    for t in args.transports:
        one, many = find(runs, "gateway", t, "by-ids"), find(runs, "gateway", t, "by-ids", 16)
        if one and many:
            over = _over(("gateway", t, "by-ids", 16), ("gateway", t, "by-ids", 1), "cpu_ms")
            ratio = paired(runs, rounds, over)
            rows.append(
                _row(
                    f"{t}: orderItemsByIds (20 ids) CPU/op, c=16 ÷ c=1",
                    "≤2×",
                    f"{many.cpu_ms:.2f} vs {one.cpu_ms:.2f} ms/op",
                    ratio,
                    ratio is not None and ratio <= 2,
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


def _generic_goal(runs: list[Run], rounds: list[list[Run]] | None, key: str, times: float) -> str:
    """Our throughput over the generic gateway's, judged only where both were saturated."""
    goal = f"aiohttp: {key} throughput vs the generic gateway (c={GENERIC_JUDGED_AT})"
    ours_at, generic_at = (
        ("gateway", "aiohttp", key, GENERIC_JUDGED_AT),
        (GENERIC, MESH, key, GENERIC_JUDGED_AT),
    )
    ours, generic = find(runs, *ours_at), find(runs, *generic_at)
    if not (ours and generic):
        return _row(goal, f"≥{times:g}×", "not judged: the generic gateway is measured by "
                    "`bench/floor.py --generic`", None, None)  # fmt: skip
    ratio = paired(runs, rounds, _over(ours_at, generic_at, "rps"))

    def least_busy(one: list[Run]) -> float | None:
        pair = find(one, *ours_at), find(one, *generic_at)
        return min(r.cores for r in pair) if pair[0] and pair[1] else None

    # Each round's less busy server, and the worst round: one unsaturated round is enough to
    # leave the goal unjudged, as its ratio would then weigh in the median.
    busy = [b for b in (least_busy(one) for one in rounds or [runs]) if b is not None]
    saturated = bool(busy) and min(busy) >= SATURATED
    measured = (
        f"{ours.rps:,.0f} vs {generic.rps:,.0f} req/s, busy {ours.cores:.2f} / "
        f"{generic.cores:.2f} cores"
    )
    if not saturated:
        measured += f" (not judged: a server used under {SATURATED:g} cores)"
    met = (ratio is not None and ratio >= times) if saturated else None
    return _row(goal, f"≥{times:g}×", measured, ratio, met)


def render(
    runs: list[Run], args: argparse.Namespace, command: str, info: dict[str, str],
    rounds: list[list[Run]],
) -> str:  # fmt: skip
    out = [
        "## The floor: the gateway against its own stack, per upstream transport",
        "",
        f"`{command}` — {info['date']}, commit {info['commit']}, {info['nproc']} CPUs "
        f"({info['cpu']}), Python {info['python']}. The machine is shared: the last columns say "
        "how many cores wrk and other processes used during each run.",
        "",
        "The floor is `bench/proxy.py`: uvicorn, one GET through the transport, the bytes back. "
        "CPU is the server's (all its workers') user + system time per request, from /proc"
        + (
            f"; figures are medians of {len(rounds)} rounds, each running every server in turn."
            if len(rounds) > 1
            else "."
        ),
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
    out += ["", "### Goals, as ratios within this run", "", *goals(runs, args, rounds)]
    if len(rounds) > 1:
        out += ["", "Each goal's ratio in each round (the table above gives their median):",
                "", *per_round(rounds, args)]  # fmt: skip
    if args.cores < 4:
        out += [
            "",
            f"Scale-out is shown but not judged: this machine has {args.cores} CPUs for two "
            "workers, the fake OMS and wrk together.",
        ]
    return "\n".join(out) + "\n"


def per_round(rounds: list[list[Run]], args: argparse.Namespace) -> list[str]:
    """One line per goal: its ratio in each round, in order, so the medians' spread shows."""
    table: dict[str, list[str]] = {}
    for runs in rounds:
        for row in goals(runs, args)[2:]:
            cells = [c.strip() for c in row.strip("|").split("|")]
            if cells[3] != "n/a":  # a goal this run does not judge
                table.setdefault(f"{cells[0]} ({cells[1]})", []).append(cells[3])
    return [f"- {goal}: {', '.join(ratios)}" for goal, ratios in table.items()]


def _goal_ratios(runs: list[Run], args: argparse.Namespace) -> dict[str, str]:
    """Goal name -> "ratio (measured)", from the goals table of one revision's runs."""
    out = {}
    for row in goals(runs, args)[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out[f"{cells[0]} ({cells[1]})"] = f"{cells[3]} ({cells[2]})"
    return out


def render_scale_out(
    runs: list[Run], args: argparse.Namespace, command: str, info: dict[str, str]
) -> str:
    """`--workers 2` against 1, with where the machine's cores went during each run."""
    out = [
        "### Scale-out: `--workers 2` against 1",
        "",
        f"`{command}` — {info['date']}, commit {info['commit']}, {info['nproc']} CPUs "
        f"({info['cpu']}), Python {info['python']}, {args.recommended} transport, wrk at c=16, "
        f"{args.rounds} round(s) alternating one worker and two (medians over the rounds).",
        "",
        "Cores are CPU seconds per second of the measured wrk run, from /proc: the gateway (all "
        "its workers) and the fake OMS as CPU per request × req/s, wrk (with this script) from "
        "its own rusage, and everything else on the machine (other sessions) as the rest of "
        "/proc/stat's busy time.",
        "",
        "| workers | query | req/s | p50 ms | p99 ms | gateway CPU ms/op | gateway cores "
        "| fake OMS cores | wrk cores | other cores | total |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(runs, key=lambda r: (r.query, r.workers)):
        gw, fake = r.cpu_ms * r.rps / 1000, r.upstream_cpu_ms * r.rps / 1000
        total = gw + fake + r.wrk_cores + r.other_cores
        out.append(
            f"| {r.workers} | {r.query} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.cpu_ms:.3f} | {gw:.2f} | {fake:.2f} | {r.wrk_cores:.2f} | "
            f"{r.other_cores:.2f} | {total:.2f} |"
        )
    out += ["", "| query | req/s, 2 workers ÷ 1 | goal |", "|---|---:|---|"]
    for key, _ in SCALE_OUT:
        one = find(runs, "gateway", args.recommended, key, 16)
        two = find(runs, "gateway", args.recommended, key, 16, 2)
        if one and two:
            judged = "≥1.8×" if args.cores >= 4 else f"≥1.8×, not judged on {args.cores} CPUs"
            out.append(f"| {key} | {two.rps / one.rps:.2f}× | {judged} |")
    errors = [f"w={r.workers}/{r.query}: {r.errors}" for r in runs if r.errors]
    out += ["", "wrk errors: " + ("; ".join(errors) if errors else "none (every response 2xx).")]
    return "\n".join(out) + "\n"


def render_compare(
    by_ref: dict[str, list[Run]], args: argparse.Namespace, command: str, info: dict[str, str]
) -> str:
    refs = list(by_ref)
    out = [
        "## The floor, before and after: " + " vs ".join(f"`{r}`" for r in refs),
        "",
        f"`{command}` — {info['date']}, {info['nproc']} CPUs ({info['cpu']}), Python "
        f"{info['python']}. Each revision runs from a clean `git archive`, against its own "
        f"floor; the revisions alternate, {args.rounds} round(s) each, and every figure is the "
        "median over the rounds. CPU is the server's user + system time per request, from /proc.",
        "",
        "| goal (target) | " + " | ".join(f"`{r}`" for r in refs) + " |",
        "|---|" + "---:|" * len(refs),
    ]
    ratios = {ref: _goal_ratios(runs, args) for ref, runs in by_ref.items()}
    for goal in ratios[refs[0]]:
        out.append(f"| {goal} | " + " | ".join(ratios[r].get(goal, "") for r in refs) + " |")
    out += [
        "",
        "CPU ms per request (median), and how many cores other processes used meanwhile:",
        "",
        "| server | transport | query | c | " + " | ".join(f"`{r}`" for r in refs) + " |",
        "|---|---|---|---:|" + "---:|" * len(refs),
    ]
    for r in by_ref[refs[0]]:
        cells = []
        for ref in refs:
            o = find(by_ref[ref], r.server, r.transport, r.query, r.concurrency, r.workers)
            cells.append(f"{o.cpu_ms:.3f} (other {o.other_cores:.2f})" if o else "")
        out.append(f"| {r.server} | {r.transport} | {r.query} | {r.concurrency} | "
                   + " | ".join(cells) + " |")  # fmt: skip
    errors = [f"{r.ref}/{r.server}/{r.transport}/{r.query}: {r.errors}"
              for runs in by_ref.values() for r in runs if r.errors]  # fmt: skip
    out += ["", "wrk errors: " + ("; ".join(errors) if errors else "none (every response 2xx).")]
    return "\n".join(out) + "\n"


def compare(args: argparse.Namespace, wrk: str) -> dict[str, list[Run]]:
    """Both revisions, alternating, `rounds` times; the median run of each."""
    raw: dict[str, list[Run]] = {args.compare: [], args.ref or "working tree": []}
    with contextlib.ExitStack() as stack:
        dirs = {
            args.compare: stack.enter_context(export_ref(args.compare))[0],
            args.ref or "working tree": stack.enter_context(export_ref(args.ref))[0],
        }
        for _ in range(args.rounds):
            for ref, code_dir in dirs.items():
                raw[ref] += measure_all(args, wrk, code_dir, ref)
    return {ref: medians(runs) for ref, runs in raw.items()}


@dataclass(slots=True)
class Probe:
    """One operation sent once to one server before timing: is it right, what did it cost."""

    server: str
    transport: str
    query: str
    items: int
    problems: list[str]
    upstream_calls: dict[str, int]
    upstream_log: list[str]


def probe_generic(servers: Servers, server: str, transport: str, key: str,
                  reference: object) -> tuple[Probe, object]:  # fmt: skip
    """Send the operation once: errors, its data against `reference` (ours), upstream calls."""
    query = generic_gw.generic_query(key) if server == GENERIC else case_by_key(key).query
    reply = servers.graphql(query)
    body = reply.json() if reply.status == 200 else {}
    data = body.get("data")
    problems = [f"HTTP {reply.status}"] if reply.status != 200 else []
    problems += [str(e.get("message"))[:200] for e in body.get("errors") or []]
    if reference is not None:
        problems += generic_gw.check_same(reference, data)
    servers.reset()  # count the calls of one operation alone
    servers.graphql(query)
    stats = servers.stats()
    servers.reset()
    items = count_items(data if server != GENERIC else generic_gw.as_ours(data))
    probe = Probe(server, transport, key, items, problems, dict(stats["calls"]), stats["log"])
    return probe, data


def measure_generic(
    args: argparse.Namespace, wrk: str, code_dir: Path
) -> tuple[list[list[Run]], list[Probe]]:
    """Ours on each transport and the generic gateway, one fake OMS, interleaved in rounds:
    each round's runs."""
    rounds: list[list[Run]] = []
    probes: list[Probe] = []
    keys = [k for k, _ in GENERIC_GOALS if not args.queries or k in args.queries]
    with contextlib.ExitStack() as stack:
        first, *rest = args.transports
        owner = stack.enter_context(servers_for("gateway", first, 1, code_dir))
        fleet = [("gateway", first, owner)]
        for t in rest:
            ours = servers_for("gateway", t, 1, code_dir)
            ours.shared_fake = owner
            fleet.append(("gateway", t, stack.enter_context(ours)))
        generic = generic_gw.GenericServers(log_name="floor-generic", shared_fake=owner)
        fleet.append((GENERIC, MESH, stack.enter_context(generic)))
        # Each transport's floor proxy on the same fake: the most any gateway on this server
        # and transport could serve, so a goal above it is out of reach of any gateway here.
        # And the floor that also decodes and re-encodes the JSON, for the restated list goal.
        for t in args.transports:
            for floor in ("proxy", "proxy+json"):
                proxy = servers_for(floor, t, 1, code_dir)
                proxy.shared_fake = owner
                fleet.append((floor, t, stack.enter_context(proxy)))
        for key in keys:
            reference = None
            for server, transport, servers in fleet:
                if server.startswith("proxy"):  # it forwards REST; nothing GraphQL to check
                    continue
                probe, data = probe_generic(servers, server, transport, key, reference)
                reference = data if reference is None else reference
                probes.append(probe)
                print(
                    f"probe {server}/{transport} {key}: {probe.items} items, upstream "
                    f"{probe.upstream_calls}, problems {probe.problems or 'none'}",
                    flush=True,
                )
        if any(p.problems or p.items != case_by_key(p.query).items for p in probes):
            raise RuntimeError("a gateway answered wrongly; nothing timed (see the probes above)")
        # Once, before any timing (PREWARM_SECONDS at c=4): V8's JIT, and ours, the same start.
        for server, transport, servers in fleet:
            for key in keys:
                query = generic_gw.generic_query(key) if server == GENERIC else None
                body = json.dumps({"query": query or case_by_key(key).query})
                script = lua_script(f"prewarm-{transport}-{key}", "POST", body, _gw_headers())
                url = f"http://{HOST}:{servers.gateway_port}/graphql"
                if server.startswith("proxy"):
                    script = lua_script(
                        f"prewarm-proxy-{key}", "GET", None, {"Authorization": AUTH}
                    )
                    url = f"http://{HOST}:{servers.gateway_port}{case_by_key(key).direct_path}"
                run_wrk(wrk, url, script, 4, PREWARM_SECONDS, args.wrk_threads)
                settle(servers)
        for _ in range(args.rounds):
            rounds.append([])
            for key in keys:
                for c in GENERIC_CONCURRENCY:
                    for server, transport, servers in fleet:
                        run = drive(servers, wrk, args, server, transport, 1, key, c)
                        rounds[-1].append(run)
    return rounds, probes


def render_generic(
    runs: list[Run], probes: list[Probe], args: argparse.Namespace, command: str,
    info: dict[str, str], versions: dict[str, str], rounds: list[list[Run]],
) -> str:  # fmt: skip
    """Ours against the generic gateway, measured in the same run."""
    packages = ", ".join(f"{name} {v}" for name, v in versions.items())
    out = [
        "## Against a generic GraphQL gateway, measured in the same run",
        "",
        f"`{command}` — {info['date']}, commit {info['commit']}, {info['nproc']} CPUs "
        f"({info['cpu']}), Python {info['python']}; {packages}.",
        "",
        "The generic gateway is GraphQL Mesh's JSON Schema source composed with `mesh-compose` "
        "and served by Hive Gateway (`bench/generic/`, one Node process, its defaults), its "
        "JSON Schema derived from the fake OMS's data (`bench/generic_gw.py`). Ours on each "
        "transport, the generic gateway and each transport's floor proxy call one fake OMS; "
        "wrk drives each in turn with the same settings "
        f"(-t{args.wrk_threads}, {args.warmup} s warm-up + {args.duration} s, after "
        f"{PREWARM_SECONDS} s of load per server and query before the first round), the servers "
        f"interleaved within each of {args.rounds} round(s); figures are medians over the "
        "rounds. CPU is each server's user + system time per request, from /proc. Before "
        "timing, each answer was checked against ours field by field (same items, ids, "
        "amounts, dates, JSON values).",
        "",
        "Upstream calls per operation (the fake OMS's counters):",
        "",
        "| server | query | items | upstream calls |",
        "|---|---|---:|---|",
    ]
    for p in probes:
        calls = ", ".join(f"{k} ×{v}" for k, v in sorted(p.upstream_calls.items()))
        shown = _shown(p.server, p.transport)
        out.append(f"| {shown} | {p.query} | {p.items} | {sum(p.upstream_calls.values())} "
                   f"({calls}: `{'`, `'.join(p.upstream_log)}`) |")  # fmt: skip
    out += [
        "",
        "| server | query | c | req/s | p50 ms | p99 ms | CPU ms/op | fake OMS CPU ms/op "
        "| wrk cores | other cores |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rank = {"proxy": 0, "proxy+json": 1, "gateway": 2, GENERIC: 3}
    order = {t: i for i, t in enumerate([*args.transports, MESH])}

    def place(r: Run) -> tuple[str, int, int, int]:
        return r.query, r.concurrency, rank[r.server], order[r.transport]

    for r in sorted(runs, key=place):
        shown = _shown(r.server, r.transport)
        out.append(
            f"| {shown} | {r.query} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.cpu_ms:.3f} | {r.upstream_cpu_ms:.3f} | {r.wrk_cores:.2f} | "
            f"{r.other_cores:.2f} |"
        )
    out += [
        "",
        "Ours ÷ generic: req/s (higher is better for ours) and the generic gateway's CPU per "
        "operation over ours, from the medians above (the goals below are judged on each "
        "round's own ratio, whose median can differ):",
        "",
        "| transport | query | c | req/s, ours ÷ generic | CPU/op, generic ÷ ours |",
        "|---|---|---:|---:|---:|",
    ]
    for t in args.transports:
        for key, _ in GENERIC_GOALS:
            for c in GENERIC_CONCURRENCY:
                ours, generic = find(runs, "gateway", t, key, c), find(runs, GENERIC, MESH, key, c)
                if ours and generic:
                    out.append(f"| {t} | {key} | {c} | {ours.rps / generic.rps:.2f}× | "
                               f"{generic.cpu_ms / ours.cpu_ms:.2f}× |")  # fmt: skip
    out += [
        "",
        "The ceiling: each transport's floor proxy (uvicorn, one GET through the transport, the "
        "bytes back; no GraphQL at all) against the generic gateway. No gateway on this server "
        "and transport can serve more than its proxy, so a goal above this ratio cannot be met "
        "here by any gateway:",
        "",
        "| transport | query | c | req/s, floor proxy ÷ generic | ours ÷ floor proxy req/s |",
        "|---|---|---:|---:|---:|",
    ]
    for t in args.transports:
        for key, _ in GENERIC_GOALS:
            for c in GENERIC_CONCURRENCY:
                proxy, generic = find(runs, "proxy", t, key, c), find(runs, GENERIC, MESH, key, c)
                ours = find(runs, "gateway", t, key, c)
                if proxy and generic and ours:
                    out.append(f"| {t} | {key} | {c} | {proxy.rps / generic.rps:.2f}× | "
                               f"{ours.rps / proxy.rps:.2f}× |")  # fmt: skip
    others = [r.other_cores for r in runs]
    if others:
        out += [
            "",
            f"Other processes used {min(others):.2f}–{max(others):.2f} of the "
            f"{info['nproc']} cores during the measured runs (medians per row): "
            + (
                "a busy machine, so req/s is noisy; CPU per operation and the ratios "
                "are the figures to compare."
                if max(others) > 0.25
                else "a quiet machine."
            ),
        ]
    errors = [f"{r.server}/{r.transport}/{r.query}/c={r.concurrency}: {r.errors}"
              for r in runs if r.errors]  # fmt: skip
    out += ["", "wrk errors: " + ("; ".join(errors) if errors else "none (every response 2xx).")]
    out += ["", "Goals, as ratios within this run:", "", *goals(runs, args, rounds)]
    if len(rounds) > 1:
        out += ["", "Each goal's ratio in each round (the table above gives their median):",
                "", *per_round(rounds, args)]  # fmt: skip
    return "\n".join(out) + "\n"


def _shown(server: str, transport: str) -> str:
    if server == GENERIC:
        return "generic (Mesh)"
    return f"floor {server} ({transport})" if server.startswith("proxy") else f"ours ({transport})"


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
    p.add_argument("--queries", default="", help="only these (detail,nested-list,by-ids)")
    p.add_argument("--ref", help="measure this git revision (a clean export), not the tree")
    p.add_argument("--compare", help="also measure this revision, interleaved: before/after")
    p.add_argument(
        "--rounds", type=int, default=1, help="rounds of the whole plan; figures are medians"
    )
    p.add_argument(
        "--generic",
        action="store_true",
        help="only ours (each transport) against the generic gateway (bench/generic: GraphQL "
        "Mesh + Hive Gateway on Node), detail and nested list at c=1 and 16, in rounds",
    )
    p.add_argument(
        "--scale-out",
        action="store_true",
        help="only --workers 2 against 1 (c=16), alternating for --rounds, with each "
        "process's share of the cores",
    )
    args = p.parse_args(argv)
    if args.compare or args.generic:
        args.no_workers = True
        args.scale_out = False
    if args.generic:
        args.compare = None
    args.transports = [t for t in args.transports.split(",") if t]
    args.queries = [q for q in args.queries.split(",") if q]
    if args.recommended not in args.transports:
        args.recommended = args.transports[0]
    args.cores = len(os.sched_getaffinity(0))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs_planned = 8 * len(args.transports) + (0 if args.no_workers else 4)
    if args.compare:
        runs_planned *= 2 * args.rounds
    if not (args.compare or args.generic or args.scale_out):
        runs_planned *= args.rounds
    if args.scale_out:
        runs_planned = 2 * len(SCALE_OUT) * args.rounds
    versions: dict[str, str] = {}
    if args.generic:
        runs_planned = len(GENERIC_GOALS) * len(GENERIC_CONCURRENCY) * args.rounds
        runs_planned *= len(args.transports) + 1
        runs_planned += len(GENERIC_GOALS) * (len(args.transports) + 1)  # the pre-warm runs
        try:  # runs `npm ci` when node is there; installs nothing else
            generic_gw.ensure_node()
        except generic_gw.NodeMissing as exc:
            print(f"bench/floor.py --generic: {exc}", file=sys.stderr)
            return 2
        versions = generic_gw.versions()
    install_deadline(runs_planned * (args.duration + args.warmup + 20) + 120)
    shown = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python", "bench/floor.py", *shown])
    wrk = ensure_wrk()
    info = machine()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rounds: list[list[Run]] = []
    try:
        if args.generic:
            generic_gw.compose()
            with export_ref(args.ref) as (code_dir, sha):
                if sha:
                    info["commit"] = f"{sha} (a clean `git archive` of it)"
                rounds, probes = measure_generic(args, wrk, code_dir)
                runs = medians([r for each in rounds for r in each])
            report = render_generic(runs, probes, args, command, info, versions, rounds)
        elif args.scale_out:
            with export_ref(args.ref) as (code_dir, sha):
                if sha:
                    info["commit"] = f"{sha} (a clean `git archive` of it)"
                runs = medians(
                    [r for _ in range(args.rounds) for r in measure_all(args, wrk, code_dir)]
                )
            report = render_scale_out(runs, args, command, info)
        elif args.compare:
            by_ref = compare(args, wrk)
            runs = [r for rs in by_ref.values() for r in rs]
            report = render_compare(by_ref, args, command, info)
        else:
            with export_ref(args.ref) as (code_dir, sha):
                if sha:
                    info["commit"] = f"{sha} (a clean `git archive` of it)"
                # Each round runs the whole plan in order, so each server's rounds are spread
                # over the run and a slow minute does not fall on one server alone.
                rounds = [
                    measure_all(args, wrk, code_dir, args.ref or "") for _ in range(args.rounds)
                ]
                runs = medians([r for each in rounds for r in each])
            report = render(runs, args, command, info, rounds)
    except BenchTimeout as exc:
        print(f"bench/floor.py: {exc}; servers stopped", file=sys.stderr)
        return 3
    raw: dict[str, object] = {"machine": info, "command": command}
    raw["runs"] = [asdict(r) for r in runs]
    raw["rounds"] = [[asdict(r) for r in each] for each in rounds]  # each round's own runs
    (RESULTS / f"floor-{stamp}.json").write_text(json.dumps(raw, indent=2))
    if not args.no_write:
        section = (
            "floor-compare" if args.compare
            else "floor-scale-out" if args.scale_out
            else "floor-generic" if args.generic
            else "floor"
        )  # fmt: skip
        replace_section(args.output, section, report, INTRO)
    print("\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
