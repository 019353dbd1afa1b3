"""Instructions per request of the gateway's server process against its floor's, under callgrind.

Run from the repository root (about 3 minutes per transport and revision; needs valgrind):

    .venv/bin/python bench/server_cpu.py [--transports aiohttp,httpx] [--queries detail,nested-list]
    .venv/bin/python bench/server_cpu.py --ref HEAD --compare main --servers gateway

The noise-free counterpart of bench/floor.py's "CPU, gateway ÷ floor" goals. For each transport
it runs, each as a real uvicorn server process on 127.0.0.1 under
`valgrind --tool=callgrind --instr-atstart=no`, against its own fake OMS (run natively):

- the gateway, `python -m gateway.cli serve` with one worker (uvicorn in that very process,
  gateway/cli.py `_serve_one`), `OMS_UPSTREAM_CLIENT` set to the transport;
- the floor, `bench/proxy.py` (a bare pure-ASGI proxy under uvicorn on the same transport),
  started as bench/floor.py's `servers_for` does: this tree's proxy on the measured revision's
  transports.

For each query, one keep-alive connection (http.client, concurrency 1) sends `--warmup`
requests, then callgrind's counters are zeroed and its instrumentation switched on
(`callgrind_control -i on PID`), exactly `--number` requests are sent, it is switched off and
the counts are dumped: the gateway gets the query's GraphQL POST (bench/queries.py), the floor
its `direct_path` GET, the same upstream call. Reported: user-space instructions per request
of each server process (all its threads, the event loop, the protocol, the app, the upstream
client and, for the gateway, its access log), and the ratio gateway ÷ floor. The same code
counts the same to within 0.1% (one hash seed for every run) whatever else the machine runs,
where /proc CPU time swings by a third. Between revisions the resolution is coarser, as the
garbage collector's rhythm and the heap's layout shift: the same gateway code in two commits
counted 1,071,215 and 1,074,909 a detail (0.35%), the same floor proxy 618,279 and 627,656 a
nested list (1.5%). Read a change under ~1% as none: `--pairs` averages runs, not that.

Not counted: kernel time (the sockets' system calls, which both servers make alike per request),
the fake OMS, the client, valgrind itself. Under callgrind everything runs some 50 times slower
in wall time, so work driven by timers rather than by requests (none per request in either
server) would weigh more per request than it does at full speed.

`--servers gateway,proxy,proxy+json` adds `bench/proxy.py --decode`, which also parses and
re-encodes the upstream JSON (bench/floor.py's `proxy+json`, the restated nested-list floor).
`proxy+graphql` adds `bench/proxy.py --graphql`: it is sent the gateway's own GraphQL POST, reads
and parses it, makes the same call and answers the upstream JSON in the GraphQL envelope, no
more. What the gateway costs beyond it is the cost of its own logic (planning, projection and
checks, errors, limits, resilience, logs, metrics), which no choice of transport or server
changes.
`--ref REV` measures a clean `git archive` of a revision; `--compare REV` a second one in the same
run, and the table then also gives each server's instructions, REV ÷ compare. Each revision runs
from the same path (CODE_DIR), and `--pairs N` alternates them N times and reports the means.
Compare revisions with each other, not with the working tree (another path). Every request has
a timeout, the whole run a time limit, and every server is stopped in a `finally`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import AUTH, BIN, HOST, REPO, BenchTimeout, Servers, export_ref, install_deadline
from queries import case_by_key, count_items

GRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no")
REQUEST_TIMEOUT = 120.0  # seconds for one request under callgrind (a 50-item list takes ~0.3)
DUMP_TIMEOUT = 60.0
SERVERS = ("gateway", "proxy", "proxy+json", "proxy+graphql")
FLOOR_NAMES = {
    "proxy": "floor (proxy.py)",
    "proxy+json": "proxy.py --decode",
    "proxy+graphql": "proxy.py --graphql",
}


# Every revision runs from this one path: its string is hashed at run time (module files, code
# objects), and a different path per run moved the counts by up to 0.2% even with one seed.
CODE_DIR = Path(tempfile.gettempdir()) / "oms-server-cpu-code"


@contextlib.contextmanager
def fixed_export(ref: str | None) -> Iterator[tuple[Path, str | None]]:
    """harness.export_ref, moved to CODE_DIR while it is measured."""
    with export_ref(ref) as (exported, sha):
        if sha is None:
            yield exported, sha  # the working tree, where it is
            return
        try:
            CODE_DIR.mkdir()
        except FileExistsError:
            raise SystemExit(
                f"{CODE_DIR} exists: another bench/server_cpu.py is running, or one was killed "
                "(then remove it)"
            ) from None
        os.replace(exported, CODE_DIR)
        try:
            yield CODE_DIR, sha
        finally:
            os.replace(CODE_DIR, exported)  # for export_ref to remove


class GrindServers(Servers):
    """The harness's servers, with the time valgrind needs to start Python and the gateway."""

    def _wait(self, port: int, path: str, proc: subprocess.Popen[bytes], name: str) -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                super()._wait(port, path, proc, name)  # 30 s at a time
                return
            except RuntimeError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise


def parse_dump(text: str) -> tuple[str, int]:
    """A callgrind dump's trigger description and its total instructions (every thread)."""
    trigger = re.search(r"^desc: Trigger: (.*)$", text, re.MULTILINE)
    totals = re.search(r"^totals: (\d+)", text, re.MULTILINE)
    if trigger is None or totals is None:
        raise ValueError("not a complete callgrind dump")
    return trigger.group(1).strip(), int(totals.group(1))


def control(pid: int, *args: str) -> None:
    """callgrind_control for this one process only (others may be profiling too)."""
    done = subprocess.run(
        ["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)} {pid}: {done.stdout[-300:]}")


def read_dump(out_file: Path, label: str) -> int:
    """The totals of the dump callgrind writes (asynchronously) as `out_file.N` for `label`."""
    deadline = time.monotonic() + DUMP_TIMEOUT
    while time.monotonic() < deadline:
        for dump in out_file.parent.glob(out_file.name + ".*"):
            try:
                trigger, totals = parse_dump(dump.read_text(errors="replace"))
            except ValueError:
                continue  # not (all) written yet
            if trigger == f"dump {label}":
                return totals
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump {label!r} within {DUMP_TIMEOUT:.0f} s")


class Client:
    """One keep-alive connection sending the same request again and again."""

    def __init__(self, port: int, method: str, target: str, body: bytes | None) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        self.request = (method, target, body)
        self.headers = {"Authorization": AUTH}
        if body is not None:
            self.headers["Content-Type"] = "application/json"

    def one(self) -> bytes:
        method, target, body = self.request
        self.conn.request(method, target, body, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {target} answered {response.status}: {data[:300]!r}")
        if response.will_close:  # a new connection inside the measured requests would count
            raise RuntimeError(f"{method} {target}: the server closed the keep-alive connection")
        return data

    def close(self) -> None:
        self.conn.close()


@dataclass(slots=True)
class Count:
    ref: str
    transport: str
    server: str  # gateway | proxy | proxy+json | proxy+graphql
    query: str
    instructions: float  # per request


def measure_queries(
    servers: Servers, out_file: Path, server: str, args: argparse.Namespace
) -> dict[str, float]:
    pid = servers.gateway.pid  # valgrind runs the server in this very process
    per_request: dict[str, float] = {}
    for key in args.queries:
        case = case_by_key(key)
        body = json.dumps({"query": case.query}).encode()
        if server == "gateway":
            client = Client(servers.gateway_port, "POST", "/graphql", body)
        elif server == "proxy+graphql":  # the same request, to the path of its upstream call
            client = Client(servers.gateway_port, "POST", case.direct_path, body)
        else:
            client = Client(servers.gateway_port, "GET", case.direct_path, None)
        try:
            first = json.loads(client.one())
            if server == "gateway" and (
                first.get("errors") or count_items(first.get("data")) != case.items
            ):
                raise RuntimeError(f"the gateway answered {key} wrongly: {str(first)[:300]}")
            for _ in range(args.warmup):
                client.one()
            control(pid, "--zero")
            control(pid, "--instr=on")
            for _ in range(args.number):
                client.one()
            control(pid, "--instr=off")
        finally:
            client.close()
        control(pid, f"--dump={key}")
        per_request[key] = read_dump(out_file, key) / args.number
    return per_request


def measure_server(
    server: str, transport: str, code_dir: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, float]:
    # A name of its own for every process: two revisions run from the same CODE_DIR.
    out_file = Path(tempfile.mkstemp(".out", f"{server.replace('+', '-')}-", workdir)[1])
    grind = [*GRIND, f"--callgrind-out-file={out_file}", str(BIN / "python")]
    if server == "gateway":
        cmd = [*grind, "-m", "gateway.cli"]
    else:  # this tree's proxy, on `code_dir`'s transports (PYTHONPATH), as bench/floor.py
        cmd = [*grind, str(REPO / "bench" / "proxy.py")]
        cmd += {"proxy+json": ["--decode"], "proxy+graphql": ["--graphql"]}.get(server, [])
    # One hash seed for every run: dicts and sets then probe alike from run to run, which
    # takes the spread of the counts between processes from ~0.5% to under 0.1%.
    env = {"OMS_UPSTREAM_CLIENT": transport, "PYTHONHASHSEED": "0"}
    name = f"server-cpu-{server.replace('+', '-')}-{transport}"
    with GrindServers((), env, name, cmd, code_dir) as servers:
        return measure_queries(servers, out_file, server, args)


def render(counts: list[Count], refs: list[str], args: argparse.Namespace) -> str:
    def find(ref: str, transport: str, server: str, key: str) -> float | None:
        runs = [
            c.instructions
            for c in counts
            if (c.ref, c.transport, c.server, c.query) == (ref, transport, server, key)
        ]
        return statistics.mean(runs) if runs else None

    def shown(v: float | None) -> str:
        return "" if v is None else f"{v:,.0f}"

    floors = [s for s in args.servers if s != "gateway"]
    gateway = "gateway" in args.servers
    columns = (["gateway"] if gateway else []) + [FLOOR_NAMES[f] for f in floors]
    if gateway:
        columns += [f"gateway ÷ {FLOOR_NAMES[f]}" for f in floors]
    runs = f", the mean of {args.pairs} runs each" if args.pairs > 1 else ""
    out = [
        f"Instructions per request of the server process, callgrind, {args.number} requests "
        f"after {args.warmup} of warm-up, concurrency 1{runs}:",
        "",
        "| revision | transport | query | " + " | ".join(columns) + " |",
        "|---|---|---|" + "---:|" * len(columns),
    ]
    for ref in refs:
        for t in args.transports:
            for key in args.queries:
                g = find(ref, t, "gateway", key)
                fs = [find(ref, t, f, key) for f in floors]
                cells = ([shown(g)] if gateway else []) + [shown(f) for f in fs]
                if gateway:
                    cells += [f"{g / f:.2f}×" if g and f else "" for f in fs]
                out.append(f"| {ref} | {t} | {key} | " + " | ".join(cells) + " |")
    if len(refs) == 2:
        out += ["", f"Change, {refs[0]} ÷ {refs[1]}:", ""]
        out += ["| transport | query | server | change |", "|---|---|---|---:|"]
        for t in args.transports:
            for key in args.queries:
                for server in args.servers:
                    new, old = find(refs[0], t, server, key), find(refs[1], t, server, key)
                    if new and old:
                        out.append(f"| {t} | {key} | {server} | {new / old - 1:+.2%} |")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--queries", default="detail,nested-list")
    p.add_argument("--transports", default="aiohttp", help="comma-separated: aiohttp,httpx")
    p.add_argument(
        "--servers",
        default="gateway,proxy",
        help="of gateway,proxy,proxy+json (bench/proxy.py --decode: it also decodes and "
        "re-encodes the JSON, the restated nested-list floor),proxy+graphql (bench/proxy.py "
        "--graphql: the gateway's own request in, the GraphQL envelope out)",
    )
    p.add_argument("--number", type=int, default=1000, help="measured requests per query")
    p.add_argument("--warmup", type=int, default=200, help="requests before measuring")
    p.add_argument("--ref", help="measure this git revision (a clean export), not the tree")
    p.add_argument("--compare", help="also measure this revision")
    p.add_argument("--pairs", type=int, default=1, help="runs of each revision, alternating")
    args = p.parse_args(argv)
    args.queries = [q for q in args.queries.split(",") if q]
    args.transports = [t for t in args.transports.split(",") if t]
    args.servers = [s for s in args.servers.split(",") if s]
    for key in args.queries:
        case_by_key(key)  # an unknown query fails before any server starts
    if not set(args.servers) <= set(SERVERS) or not args.servers:
        p.error(f"--servers: choose from {', '.join(SERVERS)}")
    if args.number < 1 or args.warmup < 0:
        p.error("--number must be at least 1 and --warmup at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    refs = [args.ref, args.compare] if args.compare else [args.ref]
    processes = args.pairs * len(refs) * len(args.transports) * len(args.servers)
    per_query = 60 + (args.number + args.warmup) * 1.0  # a nested list takes ~0.3 s a request
    install_deadline(processes * (150 + len(args.queries) * per_query))
    counts: list[Count] = []
    names: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="oms-server-cpu-") as workdir:
            for ref in [ref for _ in range(args.pairs) for ref in refs]:
                with fixed_export(ref) as (code_dir, sha):
                    name = sha or "tree"
                    if name not in names:
                        names.append(name)
                    for transport in args.transports:
                        for server in args.servers:
                            result = measure_server(
                                server, transport, code_dir, Path(workdir), args
                            )
                            for key, value in result.items():
                                counts.append(Count(name, transport, server, key, value))
                                print(
                                    f"{name:8} {transport:8} {server:8} {key:12} "
                                    f"{value:12,.0f} instructions/request",
                                    flush=True,
                                )
    except BenchTimeout as exc:
        print(f"bench/server_cpu.py: {exc}; servers stopped", file=sys.stderr)
        return 3
    print("\n" + render(counts, names, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
