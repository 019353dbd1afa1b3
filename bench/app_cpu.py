"""CPU per request of the gateway's ASGI app in-process, without an HTTP server in front of it.

Run from the repository root (about a minute):

    .venv/bin/python bench/app_cpu.py --ref HEAD --compare main

Each measurement is a child process that starts the fake OMS, builds the app as the CLI does
(JSON access log to a file, the heap settled), opens its upstream client (`--transport`,
aiohttp by default) and calls the app directly for each query: `--number` requests per round,
`--rounds` rounds, after a warm-up. It reports the process's CPU per request (the fake runs
apart) and the garbage collections those requests caused. With `--compare`, the two revisions
alternate `--pairs` times, each from a clean `git archive`; compare them as ratios within one
run, since the machine may be shared. Finer than bench/floor.py (no server, no load generator),
so a change of a few percent shows.

With `--instructions`, each child runs under valgrind's callgrind instead, counting only while
its `--number` measured requests run (after the warm-up): user-space instructions per request,
the same from run to run to within about 0.5% however busy the machine is (kernel time, such as
the sockets' system calls, is not counted). Needs valgrind; about 15 s per query and revision.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import AUTH, BIN, HOST, RESULTS, call, export_ref, free_port
from queries import case_by_key


def child(
    code_dir: str, key: str, transport: str, number: int, rounds: int, instructions: bool = False
) -> dict[str, Any]:
    """One revision, one query, in this process: what the parent prints."""
    sys.path.insert(0, code_dir)
    import uvloop

    import gateway
    from gateway import cli
    from gateway.settings import Settings

    if not gateway.__file__ or not gateway.__file__.startswith(code_dir):
        raise RuntimeError(f"imported {gateway.__file__}, not the code in {code_dir}")

    settings = Settings(
        upstream_url=f"http://{HOST}:{FAKE_PORT}", upstream_client=transport, token=None
    )
    app = cli._build_app(settings)
    cli._settle_heap()
    body = json.dumps({"query": case_by_key(key).query}).encode()
    headers = [
        (b"host", HOST.encode()), (b"content-type", b"application/json"),
        (b"authorization", AUTH.encode()), (b"content-length", str(len(body)).encode()),
    ]  # fmt: skip
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "headers": headers, "client": (HOST, 1), "server": (HOST, 80),
    }  # fmt: skip

    async def one() -> None:
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # no disconnect while the app answers
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(dict(scope), receive, send)
        if status != 200:
            raise RuntimeError(f"the gateway answered {status}")

    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    async def run() -> list[float]:
        async with app.router.lifespan_context(app):
            for _ in range(min(200, number)):
                await one()
            if instructions:  # counted by callgrind over exactly the measured requests
                toggle = ["callgrind_control", "-i"]
                subprocess.run([*toggle, "on", str(os.getpid())], capture_output=True, check=True)
                for _ in range(number):
                    await one()
                subprocess.run([*toggle, "off", str(os.getpid())], capture_output=True, check=True)
                return []
            gc.callbacks.append(count)
            timings = []
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(number):
                    await one()
                timings.append((time.process_time() - started) / number * 1000)
            gc.callbacks.remove(count)
            return timings

    timings = uvloop.run(run())
    requests = number * rounds
    per_thousand = [round(c * 1000 / requests, 1) for c in collections]
    return {"ms": timings, "gc_per_1000": per_thousand}


FAKE_PORT = 0


def measure(code_dir: Path, key: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        str(BIN / "python"), __file__, "--child", str(code_dir), "--queries", key,
        "--transport", args.transport, "--number", str(args.number), "--rounds", str(args.rounds),
    ]  # fmt: skip
    if args.instructions:
        # Only the summary on stderr is read; the profiles themselves are not kept.
        grind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        cmd = [*grind, f"--callgrind-out-file={os.devnull}", *cmd, "--instructions"]
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("APP_CPU ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child failed ({done.returncode}): {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("APP_CPU "))
    if args.instructions:
        # valgrind's summary, one per process it ran (the child's forks count next to nothing).
        collected = [int(n) for n in re.findall(r"Collected : (\d+)", done.stderr)]
        result["instructions"] = max(collected) / args.number
    return result


def main(argv: list[str] | None = None) -> int:
    global FAKE_PORT
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--queries", default="detail,nested-list")
    p.add_argument("--transport", default="aiohttp")
    p.add_argument("--number", type=int, default=300, help="requests per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ref", help="measure this git revision (a clean export), not the tree")
    p.add_argument("--compare", help="also measure this revision, alternating")
    p.add_argument("--pairs", type=int, default=2, help="with --compare: alternations")
    p.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        FAKE_PORT = free_port()
        cli = [sys.executable, "-m", "gateway.cli", "fake-upstream", "--host", HOST]
        env = {**os.environ, "PYTHONPATH": args.child}
        RESULTS.mkdir(parents=True, exist_ok=True)
        log = open(RESULTS / "app-cpu.log", "ab")
        fake = subprocess.Popen(
            [*cli, "--port", str(FAKE_PORT)], cwd=args.child, env=env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if call(FAKE_PORT, "GET", "/__fake__/stats").status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            out = os.fdopen(os.dup(1), "w")
            os.dup2(log.fileno(), 1)  # the access log goes where a server's would: a file
            result = child(
                args.child, args.queries, args.transport, args.number, args.rounds,
                args.instructions,
            )  # fmt: skip
            print("APP_CPU " + json.dumps(result), file=out, flush=True)
        finally:
            fake.terminate()
            fake.wait(timeout=10)
        return 0
    refs = [args.ref, args.compare] if args.compare else [args.ref]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    names: dict[str | None, str] = {}
    for _ in range(args.pairs if args.compare else 1):
        for ref in refs:
            with export_ref(ref) as (code_dir, sha):
                names[ref] = sha or "tree"
                for key in args.queries.split(","):
                    result = measure(code_dir, key, args)
                    results.setdefault((names[ref], key), []).append(result)
                    if args.instructions:
                        figure = f"instructions/request {result['instructions']:,.0f}"
                    else:
                        figure = f"ms/request {result['ms']}"
                    print(f"{names[ref]:8} {key:12} {figure}", flush=True)
    if args.instructions:
        print("\n| revision | query | instructions per request (each run) |")
        print("|---|---|---:|")
        for (name, key), runs in results.items():
            each = ", ".join(f"{r['instructions']:,.0f}" for r in runs)
            print(f"| {name} | {key} | {each} |")
        return 0
    print("\n| revision | query | CPU ms/request, min (median) | gc runs per 1,000 (gen 0/1/2) |")
    print("|---|---|---:|---:|")
    for (name, key), runs in results.items():
        timings = [t for r in runs for t in r["ms"]]
        gcs = "/".join(f"{statistics.mean(r['gc_per_1000'][g] for r in runs):g}" for g in range(3))
        print(f"| {name} | {key} | {min(timings):.3f} ({statistics.median(timings):.3f}) | {gcs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
