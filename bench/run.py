"""Benchmark the gateway against direct OMS REST calls with wrk, on loopback; writes BENCHMARKS.md.

Run from the repository root (about 2.5 minutes with the defaults):

    .venv/bin/python bench/run.py [--duration 5] [--latency-ms 0] [--profile] [--generic]

It installs `wrk` with apt-get when missing, starts the embedded fake OMS and the gateway (one
uvicorn worker) as subprocesses on 127.0.0.1, checks every query answers correctly, counts the
upstream calls of one operation, measures response and request bytes (gzip and APQ included), then
drives each query and its closest direct REST call with wrk at each concurrency. Results go to
the generated section of BENCHMARKS.md and to bench/results/. Every wrk run is time-bounded, the
whole run has a time limit, and both servers are stopped in a `finally`. With `--generic` a
generic GraphQL gateway (bench/generic_gw.py) runs on the same fake OMS and is driven right
after ours; the throughput goals against it are judged only then.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import generic_gw
from harness import (
    AUTH,
    BIN,
    DEMO_TOKEN,
    HOST,
    INTRO,
    REPO,
    RESULTS,
    BenchTimeout,
    Servers,
    build_request,
    busy_seconds,
    call,
    cpu_seconds,
    export_ref,
    install_deadline,
    machine,
    mib,
    own_cpu_seconds,
    replace_section,
    rss_kb,
)
from queries import CASES, Case, case_by_key, count_items

from gateway.errors import ErrorCode

# The operations a generic gateway answers too (bench/generic_gw.py), and the operation whose
# generic figure each of ours is judged against: a generic gateway cannot pick list-simple, so
# the slim list is held to the generic nested list.
GENERIC_OF = {"nested-list": "nested-list", "detail": "detail", "slim-list": "nested-list"}
# Load each server gets once per query, at c=4, before anything is timed, when a generic gateway
# (Node: V8 compiles hot code after thousands of calls) is measured beside ours: measured
# against a cold one, its first runs cost it twice the CPU per operation.
PREWARM_SECONDS = 3


@dataclass(slots=True)
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    bytes_per_request: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    cpu_ms: float = 0.0  # CPU the server under test used per request
    upstream_cpu_ms: float = 0.0  # CPU the fake OMS used per gateway request
    other_cores: float = 0.0  # CPU other processes on the machine used during the run, in cores
    wrk_cores: float = 0.0  # CPU the load generator (wrk, and this script) used, in cores


@dataclass(slots=True)
class CaseResult:
    key: str
    title: str
    direct_path: str
    direct_note: str
    ok: bool = True
    problem: str = ""
    gateway_bytes: int = 0
    gateway_gzip_bytes: int | None = None
    gateway_br_bytes: int | None = None
    direct_bytes: int = 0
    direct_gzip_bytes: int | None = None
    upstream_calls: dict[str, int] = field(default_factory=dict)
    upstream_max_in_flight: int = 0
    gateway: dict[int, WrkResult] = field(default_factory=dict)  # by concurrency
    direct: dict[int, WrkResult] = field(default_factory=dict)
    apq: dict[str, Any] = field(default_factory=dict)
    generic: dict[int, WrkResult] = field(default_factory=dict)  # the generic gateway (--generic)
    generic_upstream_calls: dict[str, int] = field(default_factory=dict)
    client_floor_ms: float | None = None  # one upstream call with httpx alone (client_floor.py)


# --- wrk -------------------------------------------------------------------------------------

_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"p50\":%d,\"p90\":%d," ..
    "\"p99\":%d,\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not on PATH; installing Debian's package with apt-get", flush=True)
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if subprocess.run(install, env=env, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=600, check=True)
        subprocess.run(install, env=env, timeout=600, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def lua_script(name: str, method: str, body: str | None, headers: dict[str, str]) -> Path:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        if "]==]" in body:
            raise ValueError("the body cannot sit in a Lua long string")
        lines.append(f"wrk.body = [==[{body}]==]")
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path = RESULTS / "lua" / f"{name}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + _DONE)
    return path


def run_wrk(
    wrk: str, url: str, script: Path, connections: int, seconds: int, threads: int
) -> WrkResult:
    cmd = [
        wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "10s", "--latency", "-s", str(script), url,
    ]  # fmt: skip
    # wrk stops itself after -d; the timeout is a backstop if it ever does not.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        output = (done.stderr or done.stdout).strip()[:500]
        raise RuntimeError(f"wrk failed ({done.returncode}): {output}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    secs = raw["duration_us"] / 1e6
    n = raw["requests"]
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]}
    return WrkResult(
        requests=n,
        seconds=secs,
        rps=n / secs if secs else 0.0,
        p50_ms=raw["p50"] / 1000,
        p90_ms=raw["p90"] / 1000,
        p99_ms=raw["p99"] / 1000,
        bytes_per_request=raw["bytes"] / n if n else 0.0,
        errors=errors,
    )


def measure(
    servers: Servers,
    side: str,
    wrk: str,
    url: str,
    script: Path,
    connections: int,
    args: argparse.Namespace,
) -> WrkResult:
    """One measured wrk run, with the CPU each server spent on it and everyone else's load."""
    gw, fake = servers.gateway.pid, servers.fake.pid
    before = cpu_seconds(gw), cpu_seconds(fake), own_cpu_seconds(), busy_seconds()
    started = time.monotonic()
    w = run_wrk(wrk, url, script, connections, args.duration, args.wrk_threads)
    wall = time.monotonic() - started
    ours = cpu_seconds(gw) + cpu_seconds(fake) - before[0] - before[1]
    w.wrk_cores = (own_cpu_seconds() - before[2]) / wall
    ours += w.wrk_cores * wall
    # Whatever else ran on the machine meanwhile (other people's tests): a noise gauge.
    w.other_cores = max(0.0, (busy_seconds() - before[3] - ours) / wall)
    # wrk stops with one request in flight per connection; the servers still finish those, so
    # their CPU is counted once they are idle again, and they count as served.
    settle(servers)
    gw_cpu, fake_cpu = cpu_seconds(gw) - before[0], cpu_seconds(fake) - before[1]
    served = w.requests + connections
    if side == "gateway":
        w.cpu_ms = gw_cpu * 1000 / served
        w.upstream_cpu_ms = fake_cpu * 1000 / served
    else:
        w.cpu_ms = fake_cpu * 1000 / served
    return w


def settle(servers: Servers, limit: float = 60.0) -> None:
    """Wait until both servers are idle, i.e. done with requests a finished wrk abandoned.

    Otherwise a slow operation's leftovers (16 connections x ~1 s of work) would eat into the
    next measured run.
    """
    pids = servers.gateway.pid, servers.fake.pid
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(0.2)
        if sum(cpu_seconds(p) for p in pids) - before < 0.01:  # under 5% of a core
            return


def other_load(servers: Servers, seconds: float = 1.0) -> float:
    """Cores other processes keep busy, sampled over `seconds` while we stay idle."""
    gw, fake = servers.gateway.pid, servers.fake.pid
    before = busy_seconds(), cpu_seconds(gw) + cpu_seconds(fake) + own_cpu_seconds()
    time.sleep(seconds)
    ours = cpu_seconds(gw) + cpu_seconds(fake) + own_cpu_seconds() - before[1]
    return max(0.0, (busy_seconds() - before[0] - ours) / seconds)


def wait_for_quiet(servers: Servers, max_wait: float, threshold: float = 0.2) -> None:
    """Wait, at most `max_wait` seconds, until other processes leave the CPUs alone."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        load = other_load(servers)
        if load < threshold:
            return
        print(f"  waiting for a quiet machine: other processes use {load:.2f} cores", flush=True)


# --- probes ----------------------------------------------------------------------------------


def probe_case(servers: Servers, case: Case, result: CaseResult) -> None:
    """Correctness, upstream calls of one operation, and response bytes."""
    reply = servers.graphql(case.query)
    payload = reply.json() if reply.status == 200 else {}
    got = count_items(payload.get("data"))
    if reply.status != 200 or payload.get("errors") or got != case.items:
        result.ok = False
        errors = payload.get("errors") or reply.body[:300].decode(errors="replace")
        result.problem = f"HTTP {reply.status}, {got}/{case.items} items, errors: {errors}"
        return
    result.gateway_bytes = len(reply.body)
    zipped = servers.graphql(case.query, {"Accept-Encoding": "gzip"})
    if zipped.headers.get("content-encoding") == "gzip":
        if json.loads(gzip.decompress(zipped.body)) != payload:
            raise RuntimeError(f"{case.key}: the gzip body differs from the plain one")
        result.gateway_gzip_bytes = len(zipped.body)
    brotli = servers.graphql(case.query, {"Accept-Encoding": "br"})
    if brotli.headers.get("content-encoding") == "br":
        result.gateway_br_bytes = len(brotli.body)

    direct = servers.direct(case.direct_path)
    if direct.status != 200:
        raise RuntimeError(f"direct {case.direct_path} answered {direct.status}")
    result.direct_bytes = len(direct.body)
    direct_zipped = servers.direct(case.direct_path, {"Accept-Encoding": "gzip"})
    if direct_zipped.headers.get("content-encoding") == "gzip":
        result.direct_gzip_bytes = len(direct_zipped.body)

    # With no latency the fake answers before the next call arrives, so in-flight would always
    # read 1; 20 ms shows how many calls the gateway really overlaps.
    servers.reset()
    servers.set_faults({"latency": max(servers.latency, 0.02)})
    servers.graphql(case.query)
    stats = servers.stats()
    servers.reset()
    result.upstream_calls = dict(stats["calls"])
    result.upstream_max_in_flight = stats["max_in_flight"]


def probe_generic(servers: Servers, generic: Servers, case: Case, result: CaseResult) -> None:
    """The generic gateway must answer our data (same items, ids, amounts) before it is timed."""
    ours = servers.graphql(case.query).json().get("data")
    reply = generic.graphql(generic_gw.generic_query(case.key))
    body = reply.json() if reply.status == 200 else {}
    problems = [str(e.get("message"))[:200] for e in body.get("errors") or []]
    problems += generic_gw.check_same(ours, body.get("data"))
    if reply.status != 200 or problems:
        raise RuntimeError(f"the generic gateway answered {case.key} wrongly: {problems[:5]}")
    generic.reset()
    generic.graphql(generic_gw.generic_query(case.key))
    result.generic_upstream_calls = dict(generic.stats()["calls"])
    generic.reset()


def client_floor(servers: Servers, path: str, code_dir: Path) -> float | None:
    """CPU per upstream call made with the gateway's transport alone (bench/client_floor.py)."""
    command = [
        str(BIN / "python"), str(REPO / "bench" / "client_floor.py"),
        "--base-url", f"http://{HOST}:{servers.fake_port}", "--path", path,
        "--token", DEMO_TOKEN, "--calls", "1000",
    ]  # fmt: skip
    # The measured revision's gateway/, on the gateway's transport (OMS_UPSTREAM_CLIENT).
    env = {**os.environ, **servers.gateway_env, "PYTHONPATH": str(code_dir)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        print(f"client_floor.py failed: {done.stderr.strip()[-300:]}", flush=True)
        return None
    cpu_ms: float = json.loads(done.stdout)["cpu_ms"]
    return cpu_ms


def probe_apq(servers: Servers, case: Case) -> dict[str, Any]:
    """Request bytes of the three ways to send a query, and whether APQ works end to end."""
    port = servers.gateway_port
    digest = hashlib.sha256(case.query.encode()).hexdigest()
    extensions = json.dumps(
        {"persistedQuery": {"version": 1, "sha256Hash": digest}}, separators=(",", ":")
    )
    auth = {"Authorization": AUTH}
    post_body = json.dumps({"query": case.query}).encode()
    post = build_request(
        "POST", port, "/graphql", post_body, {**auth, "Content-Type": "application/json"}
    )
    full_get_target = "/graphql?" + urllib.parse.urlencode({"query": case.query})
    apq_target = "/graphql?" + urllib.parse.urlencode({"extensions": extensions})
    full_get = build_request("GET", port, full_get_target, headers=auth)
    apq_get = build_request("GET", port, apq_target, headers=auth)
    out: dict[str, Any] = {
        "post_body_bytes": len(post_body),
        "post_request_bytes": len(post),
        "full_get_target_bytes": len(full_get_target),
        "full_get_request_bytes": len(full_get),
        "apq_target_bytes": len(apq_target),
        "apq_request_bytes": len(apq_get),
    }

    def codes(body: Any) -> list[str]:
        errors = (body.get("errors") or []) if isinstance(body, dict) else []
        return [str((e.get("extensions") or {}).get("code")) for e in errors]

    first = call(port, "GET", apq_target, headers=auth)
    first_codes = codes(_json_or_none(first.body))
    if ErrorCode.PERSISTED_QUERY_NOT_FOUND not in first_codes:
        out["status"] = "not implemented"
        out["detail"] = f"hash-only GET answered HTTP {first.status}, codes {first_codes}"
        return out
    register = call(
        port,
        "POST",
        "/graphql",
        {"query": case.query, "extensions": json.loads(extensions)},
        auth,
    )
    again = call(port, "GET", apq_target, headers=auth)
    again_body = _json_or_none(again.body)
    if (
        register.status == 200
        and again.status == 200
        and not codes(again_body)
        and count_items(again_body.get("data") if isinstance(again_body, dict) else None)
        == case.items
    ):
        out["status"] = "implemented"
        out["detail"] = "PERSISTED_QUERY_NOT_FOUND, then registered, then served by hash"
        out["apq_response_headers"] = {
            k: v for k, v in again.headers.items() if k in ("etag", "cache-control")
        }
    else:
        out["status"] = "partial"
        out["detail"] = (
            f"register answered {register.status}; hash-only GET then answered "
            f"{again.status}, codes {codes(again_body)}"
        )
    return out


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# --- profiling -------------------------------------------------------------------------------


def profile(
    servers: Servers, wrk: str, case: Case, seconds: int, threads: int, profiler: str
) -> tuple[str, list[str]]:
    """Sample the gateway while wrk drives `case`; py-spy first, cProfile when it cannot attach."""
    script = lua_script(
        f"profile-{case.key}", "POST", json.dumps({"query": case.query}), _gw_headers()
    )
    url = f"http://{HOST}:{servers.gateway_port}/graphql"
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if profiler == "py-spy" and not Path(spy).exists():
        print("installing py-spy into the venv for --profile", flush=True)
        pip = [str(BIN / "pip"), "install", "-q", "py-spy"]
        subprocess.run(pip, timeout=300, check=False)
    out = RESULTS / f"profile-{case.key}.speedscope.json"
    if profiler == "py-spy" and Path(spy).exists():
        cmd = [
            spy, "record", "--pid", str(servers.gateway.pid), "--duration", str(int(seconds)),
            "--rate", "100", "--function", "--format", "speedscope",
            "-o", str(out),
        ]  # fmt: skip
        sampler = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(1.0)  # let py-spy attach before the load starts
            if sampler.poll() is None:
                run_wrk(wrk, url, script, 16, seconds, threads)
            log, _ = sampler.communicate(timeout=seconds + 30)
        finally:
            if sampler.poll() is None:
                sampler.kill()
                sampler.wait(timeout=5)
        if sampler.returncode == 0 and out.exists():
            lines = top_from_speedscope(out)
            how = f"py-spy record --pid (100 Hz, {seconds:g} s, wrk -c16 on `{case.key}`)"
            return how, lines
        print(f"py-spy could not record ({sampler.returncode}): {log.strip()[-300:]}")
        print("falling back to cProfile", flush=True)
    return profile_with_cprofile(servers, wrk, case, seconds, threads, script, url)


def profile_with_cprofile(
    servers: Servers, wrk: str, case: Case, seconds: int, threads: int, script: Path, url: str
) -> tuple[str, list[str]]:
    """Restart the gateway under cProfile (slower, but needs no ptrace) and drive it."""
    import pstats

    out = RESULTS / f"profile-{case.key}.prof"
    servers.stop_gateway()
    servers.gateway_cmd = [
        str(BIN / "python"), "-m", "cProfile", "-o", str(out), "-m", "gateway.cli",
    ]  # fmt: skip
    servers.start_gateway()
    run_wrk(wrk, url, script, 16, seconds, threads)
    servers.stop_gateway(signal.SIGINT)  # uvicorn exits cleanly on SIGINT, so cProfile writes
    servers.gateway_cmd = None
    servers.start_gateway()  # leave a plain gateway running, as we found it
    stats = pstats.Stats(str(out))
    rows = []
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    ranked = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (file, line, name), (_, _, tottime, cumtime, _) in ranked[:25]:
        rows.append(
            f"| {tottime / total:6.1%} | {cumtime / total:6.1%} | `{name}` {_short(file)}:{line} |"
        )
    how = "cProfile, the gateway restarted under it (deterministic, so slower and skewed)"
    return how, ["| self | cumulative | function |", "|---:|---:|---|", *rows]


_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")
# Where this repository's code runs from: the working tree, or the export --ref made.
_CODE_ROOTS = [str(REPO) + "/"]


def _ours(file: str) -> str | None:
    """The path inside this repository, when the frame is this repository's code."""
    for root in _CODE_ROOTS:
        if file.startswith(root):
            return file[len(root) :]
    return None


def _short(file: str) -> str:
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    return _ours(file) or _STDLIB.sub("", file)


def _bucket(file: str) -> str:
    """Which package a frame belongs to, for the "where the time goes" roll-up."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    ours = _ours(file)
    if ours is not None:
        return ours.split("/", 1)[0] + "/ (this repo)"
    if _STDLIB.match(file):
        return "stdlib " + _STDLIB.sub("", file).split("/", 1)[0].removesuffix(".py")
    return file or "native"


def top_from_speedscope(path: Path, limit: int = 20) -> list[str]:
    """Self time by package, the top functions by self time, and this repo's inclusive times."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    self_w: Counter[int] = Counter()
    incl_w: Counter[int] = Counter()
    pkg_w: Counter[str] = Counter()
    total = 0.0
    for prof in doc["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not stack:
                continue
            total += weight
            self_w[stack[-1]] += weight
            pkg_w[_bucket(frames[stack[-1]].get("file", ""))] += weight
            for idx in set(stack):
                incl_w[idx] += weight
    if not total:
        return ["(no samples)"]

    def label(idx: int) -> str:
        f = frames[idx]
        return f"`{f['name']}` {_short(f.get('file', ''))}:{f.get('line', '')}"

    ours = [
        idx
        for idx, _ in incl_w.most_common()
        if _bucket(frames[idx].get("file", "")).endswith("(this repo)")
    ]
    count = sum(len(prof["samples"]) for prof in doc["profiles"])
    unit = doc["profiles"][0].get("unit", "")
    lines = [f"{count} samples, {total:.1f} {unit} of busy time (idle waits excluded).", ""]
    lines += ["Self time by package:", "", "| package | self |", "|---|---:|"]
    lines += [f"| {pkg} | {w / total:.1%} |" for pkg, w in pkg_w.most_common(12)]
    lines += ["", "Top functions by self time:", "", "| self | inclusive | function |"]
    lines += ["|---:|---:|---|"]
    for idx, w in self_w.most_common(limit):
        lines.append(f"| {w / total:.1%} | {incl_w[idx] / total:.1%} | {label(idx)} |")
    lines += ["", "This repository's functions by inclusive time:", ""]
    lines += ["| inclusive | self | function |", "|---:|---:|---|"]
    for idx in [i for i in ours if incl_w[i] / total < 0.9][:limit]:  # skip main() and such
        lines.append(f"| {incl_w[idx] / total:.1%} | {self_w[idx] / total:.1%} | {label(idx)} |")
    return lines


# --- report ----------------------------------------------------------------------------------


def _gw_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": AUTH}


def _ms(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _x(v: float) -> str:
    return f"{v:.2f}×" if v < 10 else f"{v:.0f}×"


def _bytes(v: int | None) -> str:
    return "n/a" if v is None else f"{v:,}"


def render(
    args: argparse.Namespace,
    command: str,
    info: dict[str, str],
    results: list[CaseResult],
    rss: dict[str, dict[str, int]],
    wrk_version: str,
    profiles: list[tuple[str, str, list[str]]],
) -> str:
    conc = args.concurrency
    out = [
        "## Latest `bench/run.py` results",
        "",
        f"- Command: `{command}`",
        f"- Date: {info['date']}; commit {info['commit']}",
        f"- Machine: {info['arch']}, {info['nproc']} CPUs ({info['cpu']}), {info['memory']} RAM, "
        f"kernel {info['kernel']}; Python {info['python']}; {wrk_version}",
        f"- Setup: fake OMS and gateway (1 uvicorn worker) on 127.0.0.1, fake latency "
        f"{args.latency_ms:g} ms; wrk -t{args.wrk_threads}, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s per run, gateway and direct runs interleaved; the client sends no "
        f"Accept-Encoding in load runs; waited up to {args.quiet_wait:g} s per query and "
        f"concurrency for other processes to go idle.",
        "",
    ]
    broken = [r for r in results if not r.ok]
    for r in broken:
        out += [f"**{r.title}: not measured**: {r.problem}", ""]
    ok = [r for r in results if r.ok and r.gateway]
    by = {r.key: r for r in ok}

    out += ["### Goals (one worker process)", ""]
    out += goals_table(by, conc)
    out += ["", "### Throughput and latency, gateway vs direct REST", ""]
    for c in conc:
        out += [
            f"Concurrency {c}:",
            "",
            "| query | gateway req/s | direct req/s | req/s gateway/direct | gateway p50 ms "
            "| direct p50 ms | p50 gateway/direct | gateway p99 ms | direct p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in ok:
            g, d = r.gateway[c], r.direct[c]
            out.append(
                f"| {r.title} | {g.rps:,.0f} | {d.rps:,.0f} | {g.rps / d.rps:.3f} | "
                f"{_ms(g.p50_ms)} | {_ms(d.p50_ms)} | {_x(g.p50_ms / d.p50_ms)} | "
                f"{_ms(g.p99_ms)} | {_ms(d.p99_ms)} |"
            )
        out.append("")
    errs = [
        f"{r.key} c={c} {side}: {w.errors}"
        for r in ok
        for c in conc
        for side, w in (
            ("gateway", r.gateway[c]),
            ("direct", r.direct[c]),
            ("generic", r.generic.get(c)),
        )
        if w is not None and w.errors
    ]
    out.append("wrk errors: " + ("; ".join(errs) if errs else "none (every response 2xx)."))
    out += [
        "",
        "### CPU per operation",
        "",
        "CPU time (user + system, from /proc) each server spent per request in the measured "
        "runs, including finishing the requests still in flight when wrk stopped: steadier "
        "than req/s on a shared machine, since it does not count time spent waiting for a core.",
        "",
        "| query | concurrency | gateway ms | fake OMS ms during gateway runs "
        "| direct: fake OMS ms | gateway / direct | other load (cores), gateway / direct run |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ok:
        for c in conc:
            g, d = r.gateway[c], r.direct[c]
            ratio = _x(g.cpu_ms / d.cpu_ms) if d.cpu_ms else "n/a"
            out.append(
                f"| {r.title} | {c} | {g.cpu_ms:.2f} | {g.upstream_cpu_ms:.2f} | "
                f"{d.cpu_ms:.3f} | {ratio} | {g.other_cores:.2f} / {d.other_cores:.2f} |"
            )
    noisy = max((w.other_cores for r in ok
                 for w in [*r.gateway.values(), *r.direct.values(), *r.generic.values()]),
                default=0.0)  # fmt: skip
    out += [
        "",
        f"Other processes used up to {noisy:.2f} cores during a measured run"
        + (
            " (a noisy run: prefer the CPU-per-operation figures and ratios)."
            if noisy > 0.25
            else " (a quiet machine)."
        ),
    ]
    measured = [r for r in ok if r.generic]
    if measured:
        out += [
            "",
            "The generic gateway (GraphQL Mesh + Hive Gateway, `bench/generic/`, one Node "
            "process) on the same fake OMS, driven the same way right after ours; the same data "
            "was checked field by field before timing:",
            "",
            "| query | concurrency | generic req/s | generic p50 ms | generic p99 ms | generic "
            "CPU ms/op | ours CPU ms/op | req/s ours ÷ generic | upstream calls per operation |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in measured:
            calls = ", ".join(f"{k} ×{v}" for k, v in sorted(r.generic_upstream_calls.items()))
            for c in conc:
                g, o = r.generic[c], r.gateway[c]
                out.append(
                    f"| {r.title} | {c} | {g.rps:,.0f} | {_ms(g.p50_ms)} | {_ms(g.p99_ms)} | "
                    f"{g.cpu_ms:.2f} | {o.cpu_ms:.2f} | {_x(o.rps / g.rps)} | {calls} |"
                )
    floors = [r for r in ok if r.client_floor_ms is not None and 1 in r.gateway]
    if floors:
        out += [
            "",
            "What one upstream call costs the gateway's process before any GraphQL work: the same "
            "GET made with the gateway's own httpx client and decoded with orjson, 1,000 times in "
            "a row, outside the gateway (`bench/client_floor.py`).",
            "",
            "| query | gateway CPU ms/op (c=1) | the upstream call alone, ms | share of the "
            "gateway's CPU | the rest: GraphQL, HTTP serving, logs, metrics, ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in floors:
            g, f = r.gateway[1].cpu_ms, r.client_floor_ms or 0.0
            share = f"{f / g:.0%}" if g else "n/a"
            out.append(f"| {r.title} | {g:.2f} | {f:.2f} | {share} | {g - f:.2f} |")
    out += ["", "Direct REST comparators:", ""]
    out += [f"- {r.title}: `GET {r.direct_path}`, {r.direct_note}." for r in ok]

    out += ["", "### Bytes and upstream calls per operation", ""]
    out += [
        "Response body bytes (headers excluded). gzip and br are what the server sends when the "
        "client asks for that encoding; n/a means it sent the body uncompressed.",
        "",
        "| query | gateway | gateway gzip | gateway br | direct | direct gzip | upstream calls "
        "| upstream calls in flight at once (20 ms upstream latency) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in ok:
        calls = ", ".join(f"{k} ×{v}" for k, v in sorted(r.upstream_calls.items()))
        total = sum(r.upstream_calls.values())
        out.append(
            f"| {r.title} | {_bytes(r.gateway_bytes)} | {_bytes(r.gateway_gzip_bytes)} | "
            f"{_bytes(r.gateway_br_bytes)} | "
            f"{_bytes(r.direct_bytes)} | {_bytes(r.direct_gzip_bytes)} | {total} ({calls}) | "
            f"{r.upstream_max_in_flight} |"
        )

    out += ["", "### Gateway memory (resident set, one process)", ""]
    out += ["| when | VmRSS | VmHWM (peak) |", "|---|---:|---:|"]
    for when, values in rss.items():
        out.append(f"| {when} | {mib(values['VmRSS'])} | {mib(values['VmHWM'])} |")

    out += ["", "### Requests for mobile clients: automatic persisted queries (APQ)", ""]
    out += [
        "Whole HTTP request bytes with the same headers (Host, Authorization, Connection; "
        "POST adds Content-Type and Content-Length).",
        "",
        "| query | POST with query | GET with query | APQ GET, hash only | APQ / POST | APQ |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        a = r.apq
        if not a:
            continue
        out.append(
            f"| {r.title} | {a['post_request_bytes']:,} | {a['full_get_request_bytes']:,} | "
            f"{a['apq_request_bytes']:,} | {a['apq_request_bytes'] / a['post_request_bytes']:.0%} "
            f"| {a['status']} |"
        )
    details = {r.apq.get("detail") for r in results if r.apq}
    out += ["", "APQ check: " + "; ".join(sorted(d for d in details if d)) + "."]
    headers = next((r.apq.get("apq_response_headers") for r in results if r.apq), None)
    if headers:
        out.append(f"A hash-only GET is answered with {headers}.")

    for key, how, lines in profiles:
        title = case_by_key(key).title
        out += ["", f"### Where the time goes ({title})", "", f"Profiled with {how}.", ""]
        out += lines
    return "\n".join(out) + "\n"


def goals_table(by: dict[str, CaseResult], conc: list[int]) -> list[str]:
    c1 = 1 if 1 in conc else conc[0]
    hi = max(conc)
    rows = [
        "Throughput goals compare our concurrency-1 figures with the generic gateway's, "
        f"measured in this run (`--generic`); the concurrency-{hi} figures are shown alongside.",
        "",
        "| goal | target | measured | ratio | met? |",
        "|---|---|---|---:|---|",
    ]

    def thr(key: str, times: float, label: str, note: str = "") -> None:
        r, ref = by.get(key), by.get(GENERIC_OF[key])
        if r is None:
            rows.append(f"| {label} | | not measured | | |")
            return
        if ref is None or c1 not in ref.generic or hi not in ref.generic:
            rows.append(f"| {label} | ≥{times:g}× the generic gateway{note} | "
                        f"not judged: needs `--generic` with `{GENERIC_OF[key]}` in this run "
                        "| | |")  # fmt: skip
            return
        gen, gen_hi = ref.generic[c1].rps, ref.generic[hi].rps
        ratio = r.gateway[c1].rps / gen
        hi_ratio = r.gateway[hi].rps / gen_hi
        rows.append(
            f"| {label} | ≥{times:g}× the generic gateway{note} | {r.gateway[c1].rps:,.0f} vs "
            f"{gen:,.0f} req/s (c={hi}: {r.gateway[hi].rps:,.0f} vs {gen_hi:,.0f}) | "
            f"{ratio:.1f}× (c={hi}: {hi_ratio:.1f}×) | {'met' if ratio >= times else 'not met'} |"
        )

    thr("nested-list", 5, "nested list throughput vs generic")
    nested = by.get("nested-list")
    if nested is not None:
        g, d = nested.gateway[c1], nested.direct[c1]
        ratio = g.p50_ms / d.p50_ms
        rows.append(
            f"| nested list p50 vs direct REST (same run) | ≤5× direct | {_ms(g.p50_ms)} ms vs "
            f"{_ms(d.p50_ms)} ms | {ratio:.1f}× | {'met' if ratio <= 5 else 'not met'} |"
        )
        if c1 in nested.generic:
            gen = nested.generic[c1].p50_ms
            rows.append(
                f"| (context) p50 over direct REST, generic gateway | | {gen / d.p50_ms:.0f}× "
                f"({_ms(gen)} / {_ms(d.p50_ms)} ms) | ours {ratio:.1f}× | |"
            )
    thr("detail", 3, "detail throughput vs generic")
    thr("slim-list", 5, "slim list throughput vs generic",
        " (its nested list: a generic gateway cannot pick list-simple)")  # fmt: skip
    return rows


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    # wrk takes whole seconds only.
    p.add_argument("--duration", type=int, default=5, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up per run; 0: none")
    p.add_argument("--latency-ms", type=float, default=0.0, help="latency the fake adds per call")
    p.add_argument(
        "--concurrency", default="1,16", help="comma-separated wrk connection counts (1,16)"
    )
    p.add_argument("--queries", default="all", help=f"comma-separated: {[c.key for c in CASES]}")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (leave CPU to servers)")
    p.add_argument("--profile", action="store_true", help="also profile one query (py-spy)")
    p.add_argument(
        "--profile-query", default="nested-list", help="comma-separated queries --profile drives"
    )
    p.add_argument("--profile-duration", type=int, default=10, help="seconds")
    p.add_argument(
        "--profiler", choices=("py-spy", "cprofile"), default="py-spy", help="cprofile: no ptrace"
    )
    p.add_argument(
        "--serve-arg", action="append", default=[], help="extra `oms-gateway serve` flag; repeat"
    )
    p.add_argument(
        "--gateway-env", action="append", default=[], help="OMS_*=value for the gateway; repeat"
    )
    p.add_argument(
        "--ref", help="benchmark this git revision (a clean export) instead of the working tree"
    )
    p.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0,
        help="seconds to wait, per query and concurrency, for other processes to go idle",
    )
    p.add_argument("--time-limit", type=float, default=0, help="seconds; 0 picks a bound")
    p.add_argument(
        "--floor", action="store_true", help="then bench/floor.py: the stack's floor per transport"
    )
    p.add_argument(
        "--generic",
        action="store_true",
        help="also measure the generic gateway (bench/generic: GraphQL Mesh + Hive Gateway on "
        "Node) on the same fake OMS, interleaved; the goals against it need it",
    )
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",")]
    args.cases = (
        list(CASES) if args.queries == "all" else [case_by_key(k) for k in args.queries.split(",")]
    )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = len(args.cases) * len(args.concurrency) * 2
    budget = runs * (args.duration + args.warmup + 5) + 120
    budget += len(args.cases) * len(args.concurrency) * (args.quiet_wait + 1)
    if args.profile:
        budget += (args.profile_duration + 90) * len(args.profile_query.split(","))
    if args.generic:
        budget += len(GENERIC_OF) * len(args.concurrency) * (args.duration + args.warmup + 5) + 60
        budget += 2 * len(args.cases) * (PREWARM_SECONDS + 5)
        try:  # runs `npm ci` when node is there; installs nothing else
            generic_gw.ensure_node()
        except generic_gw.NodeMissing as exc:
            print(f"bench/run.py --generic: {exc}", file=sys.stderr)
            return 2
        generic_gw.compose()
    install_deadline(args.time_limit or budget * 1.5)
    command = " ".join([".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    wrk = ensure_wrk()
    wrk_version = (
        subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
        .stdout.splitlines()[0]
        .split(" [")[0]
    )
    env = dict(kv.split("=", 1) for kv in args.gateway_env)
    results = [CaseResult(c.key, c.title, c.direct_path, c.direct_note) for c in args.cases]
    rss: dict[str, dict[str, int]] = {}
    profiles: list[tuple[str, str, list[str]]] = []
    started = time.monotonic()
    info: dict[str, str] = {}
    try:
        with (
            export_ref(args.ref) as (code_dir, exported),
            Servers(args.serve_arg, env, "bench", code_dir=code_dir) as servers,
            contextlib.ExitStack() as stack,
        ):
            generic = None
            if args.generic:  # on the very same fake OMS, started once
                generic = generic_gw.GenericServers(log_name="bench-generic", shared_fake=servers)
                stack.enter_context(generic)
            info.update(machine(exported))
            _CODE_ROOTS.insert(0, f"{code_dir}/")
            servers.latency = args.latency_ms / 1000
            servers.reset()
            rss["after start-up"] = rss_kb(servers.gateway.pid)
            for case, result in zip(args.cases, results, strict=True):
                probe_case(servers, case, result)
                result.apq = probe_apq(servers, case)
                if generic is not None and result.ok and case.key in generic_gw.GENERIC_KEYS:
                    probe_generic(servers, generic, case, result)
                print(f"probed {case.key}: ok={result.ok} {result.problem}", flush=True)
            servers.reset()
            rss["before load"] = rss_kb(servers.gateway.pid)
            gw_url = f"http://{HOST}:{servers.gateway_port}/graphql"
            for case, result in zip(args.cases, results, strict=True):
                if not result.ok:
                    continue
                gw_script = lua_script(
                    f"gw-{case.key}", "POST", json.dumps({"query": case.query}), _gw_headers()
                )
                direct_script = lua_script(
                    f"direct-{case.key}", "GET", None, {"Authorization": AUTH}
                )
                direct_url = f"http://{HOST}:{servers.fake_port}{case.direct_path}"
                sides = [
                    ("gateway", servers, gw_url, gw_script),
                    ("direct", servers, direct_url, direct_script),
                ]
                if generic is not None and case.key in generic_gw.GENERIC_KEYS:
                    body = json.dumps({"query": generic_gw.generic_query(case.key)})
                    sides.append((
                        "generic", generic, f"http://{HOST}:{generic.gateway_port}/graphql",
                        lua_script(f"generic-{case.key}", "POST", body, _gw_headers()),
                    ))  # fmt: skip
                for side, under_test, url, script in sides if generic is not None else ():
                    if side != "direct":  # the same head start for ours and the generic one
                        run_wrk(wrk, url, script, 4, PREWARM_SECONDS, args.wrk_threads)
                        settle(under_test)
                for c in args.concurrency:
                    wait_for_quiet(servers, args.quiet_wait)
                    for side, under_test, url, script in sides:
                        if args.warmup > 0:
                            run_wrk(wrk, url, script, c, args.warmup, args.wrk_threads)
                            settle(under_test)
                        # The generic gateway stands where ours does: "gateway" for measure().
                        which = "direct" if side == "direct" else "gateway"
                        w = measure(under_test, which, wrk, url, script, c, args)
                        getattr(result, side)[c] = w
                        print(
                            f"{case.key:12} c={c:<3} {side:8} {w.rps:9,.0f} req/s  "
                            f"p50 {w.p50_ms:7.2f} ms  p99 {w.p99_ms:7.2f} ms  "
                            f"other load {w.other_cores:.2f} cores {w.errors or ''}",
                            flush=True,
                        )
            rss["after load"] = rss_kb(servers.gateway.pid)
            for result in results:
                if result.ok and sum(result.upstream_calls.values()) == 1:
                    result.client_floor_ms = client_floor(servers, result.direct_path, code_dir)
            for key in args.profile_query.split(",") if args.profile else []:
                target = case_by_key(key)
                how, lines = profile(
                    servers, wrk, target, args.profile_duration, args.wrk_threads, args.profiler
                )
                profiles.append((key, how, lines))
                (RESULTS / f"profile-{key}.md").write_text(
                    f"Profiled with {how}.\n\n" + "\n".join(lines) + "\n"
                )
    except BenchTimeout as exc:
        print(f"bench/run.py: {exc}; servers stopped", file=sys.stderr)
        return 3
    finally:
        signal.alarm(0)
    report = render(args, command, info, results, rss, wrk_version, profiles)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = {
        "machine": info,
        "command": command,
        "rss_kb": rss,
        "results": [asdict(r) for r in results],
        "profiles": profiles,
    }
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(raw, indent=2, default=str))
    (RESULTS / f"bench-{stamp}.md").write_text(report)
    if not args.no_write:
        replace_section(args.output, "bench", report, INTRO)
    print("\n" + report)
    print(f"done in {time.monotonic() - started:.0f} s; raw results in bench/results/")
    ratios = [r.gateway[c].rps / r.direct[c].rps for r in results if r.ok for c in args.concurrency]
    if ratios:
        print(f"median gateway/direct req/s ratio: {statistics.median(ratios):.3f}")
    if args.floor:  # same run, same machine, minutes later: the floor and the gateway per transport
        import floor

        floor_args = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
        if args.no_write:
            floor_args.append("--no-write")
        if floor.main(floor_args) != 0:
            return 1
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
