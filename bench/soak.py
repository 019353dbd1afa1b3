"""Load and soak the gateway while the fake OMS injects faults: success, codes, latency, RSS.

Run from the repository root (about 1.5 minutes with the defaults):

    .venv/bin/python bench/soak.py [--duration 20] [--max-requests 20000] [--clients 32]
        [--scenarios baseline,status503,latency,mix,attack] [--serve-arg=--upstream-read-timeout=2]
        [--attack-connections 256] [--write-md]

For each scenario it resets the fake, turns the scenario's faults on, and runs `--clients`
concurrent clients (asyncio + httpx) that send a seeded mix of operations (nested list, slim
list, detail, orderItemsByIds, with varying pages and ids) until `--duration` seconds pass or
`--max-requests` operations were sent, whichever comes first. An operation succeeds when the
HTTP status is 200 and the body has no `errors`. Everything runs on 127.0.0.1; both servers are
stopped in a `finally`, and the whole run has a time limit.

The `attack` scenario runs the same legitimate clients while, from another loopback address
(127.0.0.2), `--attack-connections` sockets send a request head with `Content-Length: 1000` and
one body byte, then nothing, reopening as the gateway cuts them; and one client (127.0.0.3) sends
operations of 10 aliases whose filter the fake OMS answers with 500. Its figures are the
legitimate clients' success rate and the gateway's RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from harness import (
    AUTH,
    HOST,
    INTRO,
    REPO,
    RESULTS,
    BenchTimeout,
    Servers,
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
from queries import ITEM_FIELDS, SLIM_FIELDS

NESTED = (
    "query SoakNested($page: Int!) { orderItems(first: 50, page: $page) "
    "{ totalCount nodes { ...ItemFields } } }" + ITEM_FIELDS
)
SLIM = (
    "query SoakSlim($page: Int!) { orderItems(first: 50, page: $page) "
    "{ nodes { ...SlimFields } } }" + SLIM_FIELDS
)
DETAIL = "query SoakDetail($id: ID!) { orderItem(id: $id) { ...ItemFields } }" + ITEM_FIELDS
BY_IDS = "query SoakByIds($ids: [ID!]!) { orderItemsByIds(ids: $ids) { ...ItemFields } }" + (
    ITEM_FIELDS
)


def _nested(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    return "nested", NESTED, {"page": rng.randint(1, 6)}


def _slim(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    return "slim", SLIM, {"page": rng.randint(1, 6)}


def _detail(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    return "detail", DETAIL, {"id": str(rng.randint(1, 300))}


def _by_ids(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    return "byIds", BY_IDS, {"ids": [str(i) for i in rng.sample(range(1, 301), 5)]}


# (weight, make): detail-heavy like a mobile app, lists for the back office.
MIX: list[tuple[float, Callable[[random.Random], tuple[str, str, dict[str, Any]]]]] = [
    (0.3, _nested),
    (0.2, _slim),
    (0.4, _detail),
    (0.1, _by_ids),
]

# Faults for the fake's POST /__fake__/faults (gateway/fake_upstream/app.py `Faults`).
SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "baseline": [{}],
    "status503": [{"kind": "status", "status": 503, "retry_after": "0", "rate": 0.2}],
    "latency": [{"latency": 0.05}],
    # The mix rotates every --mix-period seconds, so breakers see failures come and go.
    # Only the poisoned filter fails; the slow-body sockets come from `attack` below.
    "attack": [{"kind": "status", "status": 500, "order_number": "POISON-1"}],
    "mix": [
        {"kind": "status", "status": 503, "retry_after": "0", "rate": 0.2, "latency": 0.01},
        {"kind": "status", "status": 502, "rate": 0.1, "latency": 0.005},
        {"kind": "truncated", "rate": 0.05, "latency": 0.005},
        {"kind": "status", "status": 429, "retry_after": "1", "rate": 0.1},
        {"kind": "hang", "hang": 1.5, "rate": 0.05},
        {"kind": "malformed", "rate": 0.05, "latency": 0.02},
    ],
    # A hostile upstream (issue 10, point 4): a tenth of detail calls answer a 1 GiB gzip or br
    # bomb, a 200 MiB body or string field, or a body that never ends; lists stay healthy, so
    # nested and slim show what legitimate traffic got meanwhile, and RSS must come back.
    "hostile": [
        {"kind": kind, "rate": 0.1, "endpoints": ["detail"], **extra}
        for kind, extra in (
            ("bomb", {"encoding": "gzip", "size": 1 << 30}),
            ("huge_string", {"size": 200 << 20}),
            ("bomb", {"encoding": "br", "size": 1 << 30}),
            ("endless", {}),
            ("huge_body", {"size": 200 << 20}),
        )
    ],
}


@dataclass
class Tally:
    """What the clients saw in one scenario."""

    ops: int = 0
    ok: int = 0
    partial: int = 0  # 200 with data and errors
    latencies: list[float] = field(default_factory=list)
    status: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    by_op: Counter[str] = field(default_factory=Counter)
    ok_by_op: Counter[str] = field(default_factory=Counter)
    client_errors: Counter[str] = field(default_factory=Counter)
    attack: Counter[str] = field(default_factory=Counter)  # what the attackers got back


async def client(
    http: httpx.AsyncClient, seed: int, deadline: float, budget: list[int], tally: Tally
) -> None:
    rng = random.Random(seed)
    weights = [w for w, _ in MIX]
    makers = [m for _, m in MIX]
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        name, query, variables = rng.choices(makers, weights)[0](rng)
        started = time.perf_counter()
        try:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
        except httpx.HTTPError as exc:
            tally.ops += 1
            tally.by_op[name] += 1
            tally.client_errors[type(exc).__name__] += 1
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.ops += 1
        tally.by_op[name] += 1
        tally.status[response.status_code] += 1
        try:
            body = response.json()
        except ValueError:
            tally.codes["(body not JSON)"] += 1
            continue
        errors = body.get("errors") if isinstance(body, dict) else None
        for error in errors or []:
            tally.codes[str((error.get("extensions") or {}).get("code"))] += 1
        if response.status_code == 200 and not errors:
            tally.ok += 1
            tally.ok_by_op[name] += 1
        elif response.status_code == 200 and body.get("data") is not None:
            tally.partial += 1


# Loopback too: the gateway sees other client addresses than the legitimate clients'.
ATTACKER, POISONER = "127.0.0.2", "127.0.0.3"
SLOW_HEAD = (
    f"POST /graphql HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    f"Authorization: {AUTH}\r\nContent-Length: 1000\r\n\r\n{{"
).encode()
POISONED = (
    "{ "
    + " ".join(
        f'a{i}: orderItems(orderNumber: "POISON-1", first: {i + 1}) {{ nodes {{ id }} }}'
        for i in range(10)
    )
    + " }"
)


async def slow_body(port: int, deadline: float, opened: list[int], tally: Tally) -> None:
    """One socket slot of the attack: send a head and one byte, wait to be cut, reopen."""
    while time.monotonic() < deadline and opened[0] > 0:
        opened[0] -= 1
        try:
            reader, writer = await asyncio.open_connection(HOST, port, local_addr=(ATTACKER, 0))
        except OSError as exc:
            tally.attack[f"connect {type(exc).__name__}"] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            writer.write(SLOW_HEAD)
            left = max(0.1, deadline - time.monotonic())
            first = await asyncio.wait_for(reader.readline(), left)
            status = first.split()[1].decode() if first.startswith(b"HTTP/") else "closed"
            tally.attack[f"slow body -> {status}"] += 1
            if status == "503":
                await asyncio.sleep(1.0)  # refused at once: do not spin (nor load this loop)
        except (TimeoutError, OSError):
            tally.attack["slow body held to the end"] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def poisoner(port: int, deadline: float, budget: list[int], tally: Tally) -> None:
    """A client whose own filter makes the OMS fail, over and over."""
    transport = httpx.AsyncHTTPTransport(local_address=POISONER)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{port}", transport=transport, headers={"Authorization": AUTH}
    ) as http:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            try:
                reply = await http.post("/graphql", json={"query": POISONED})
                codes = {e["extensions"]["code"] for e in reply.json().get("errors", [])}
                tally.attack[f"poisoned -> {reply.status_code} {','.join(sorted(codes))}"] += 1
            except (httpx.HTTPError, ValueError) as exc:
                tally.attack[f"poisoned -> {type(exc).__name__}"] += 1


def attackers(port: int, args: argparse.Namespace, deadline: float, tally: Tally) -> list[Any]:
    opened = [args.attack_max_sockets]
    budget = [args.max_requests]
    slow = [slow_body(port, deadline, opened, tally) for _ in range(args.attack_connections)]
    return [*slow, poisoner(port, deadline, budget, tally)]


async def rotate(servers: Servers, faults: list[dict[str, Any]], period: float, end: float) -> None:
    """Switch the fake to the next fault set every `period` seconds until `end`."""
    i = 0
    while time.monotonic() < end:
        await asyncio.to_thread(servers.set_faults, faults[i % len(faults)])
        i += 1
        await asyncio.sleep(min(period, max(0.0, end - time.monotonic())))


async def drive(servers: Servers, name: str, args: argparse.Namespace) -> Tally:
    tally = Tally()
    faults = SCENARIOS[name]
    for bomb in (f for f in faults if f.get("kind") == "bomb"):
        servers.set_faults(bomb)  # the fake compresses each bomb once, before the clock starts
    deadline = time.monotonic() + args.duration
    budget = [args.max_requests]
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(
        base_url=f"http://{HOST}:{servers.gateway_port}",
        headers={"Authorization": AUTH},
        timeout=httpx.Timeout(args.request_timeout),
        limits=limits,
    ) as http:
        tasks = [
            asyncio.create_task(client(http, args.seed * 1000 + i, deadline, budget, tally))
            for i in range(args.clients)
        ]
        tasks.append(asyncio.create_task(rotate(servers, faults, args.mix_period, deadline)))
        if name == "attack":
            port = servers.gateway_port
            tasks += [asyncio.create_task(a) for a in attackers(port, args, deadline, tally)]
        # A request in flight at the deadline may take up to the request timeout to finish.
        _, pending = await asyncio.wait(tasks, timeout=args.duration + args.request_timeout + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return tally


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(
    name: str,
    tally: Tally,
    seconds: float,
    rss_before: dict[str, int],
    rss_after: dict[str, int],
    upstream: dict[str, Any],
    ready: str,
    cpu: tuple[float, float],
) -> list[str]:
    rate = tally.ok / tally.ops if tally.ops else 0.0
    fives = sum(n for s, n in tally.status.items() if s >= 500)
    lat = tally.latencies
    per_op = ", ".join(f"{op} {tally.ok_by_op[op]}/{n}" for op, n in sorted(tally.by_op.items()))
    codes = ", ".join(f"{c} ×{n}" for c, n in tally.codes.most_common()) or "none"
    return [
        f"### {name}: faults {json.dumps(SCENARIOS[name])}",
        "",
        f"- operations: {tally.ops} in {seconds:.1f} s ({tally.ops / seconds:.0f}/s)",
        f"- success: {tally.ok} ({rate:.2%}); 200 with partial data: {tally.partial}; "
        f"by operation (ok/sent): {per_op}",
        f"- error codes (extensions.code): {codes}",
        "- HTTP status: "
        + ", ".join(f"{s} ×{n}" for s, n in sorted(tally.status.items()))
        + f"; gateway 5xx: {fives}",
        f"- client-side failures (no HTTP answer): {dict(tally.client_errors) or 'none'}",
        *(
            [f"- attackers (not counted above): {', '.join(attack)}"]
            if (attack := [f"{k} ×{n}" for k, n in sorted(tally.attack.items())])
            else []
        ),
        f"- latency: p50 {_pct(lat, 0.5) * 1000:.1f} ms, p99 {_pct(lat, 0.99) * 1000:.1f} ms, "
        f"max {max(lat, default=0) * 1000:.0f} ms, mean "
        f"{(statistics.fmean(lat) if lat else 0) * 1000:.1f} ms",
        f"- upstream: {upstream.get('total', 0)} calls ({upstream.get('calls', {})}), at most "
        f"{upstream.get('max_in_flight', 0)} in flight; "
        f"{upstream.get('total', 0) / max(tally.ops, 1):.2f} per operation",
        f"- gateway CPU: {cpu[0] * 1000 / max(tally.ops, 1):.1f} ms per operation; other "
        f"processes on the machine meanwhile: {cpu[1]:.2f} cores",
        f"- gateway RSS: {mib(rss_before['VmRSS'])} before, {mib(rss_after['VmRSS'])} after "
        f"(peak {mib(rss_after['VmHWM'])}); /readyz after: {ready}",
        "",
    ]


def readiness(servers: Servers) -> str:
    try:
        reply = call(servers.gateway_port, "GET", "/readyz")
    except OSError as exc:
        return f"unreachable ({exc})"
    return f"{reply.status} {reply.body.decode(errors='replace')[:200]}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    p.add_argument("--max-requests", type=int, default=20000, help="operations per scenario")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--scenarios", default="baseline,status503,latency,mix,hostile,attack")
    p.add_argument("--mix-period", type=float, default=2.0, help="seconds per fault set in mix")
    p.add_argument("--request-timeout", type=float, default=30.0, help="client timeout, seconds")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--attack-connections", type=int, default=256, help="slow-body sockets")
    p.add_argument(
        "--attack-max-sockets", type=int, default=20000, help="sockets the attack may open"
    )
    p.add_argument(
        "--serve-arg", action="append", default=[], help="extra `oms-gateway serve` flag; repeat"
    )
    p.add_argument(
        "--gateway-env", action="append", default=[], help="OMS_*=value for the gateway; repeat"
    )
    p.add_argument(
        "--ref", help="soak this git revision (a clean export) instead of the working tree"
    )
    p.add_argument("--write-md", action="store_true", help="put the summary in BENCHMARKS.md")
    p.add_argument("--no-save", action="store_true", help="skip bench/results/soak-<date>.txt")
    args = p.parse_args(argv)
    args.scenario_names = args.scenarios.split(",")
    for name in args.scenario_names:
        if name not in SCENARIOS:
            p.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    per = args.duration + args.request_timeout + 30
    install_deadline(len(args.scenario_names) * per + 120)
    command = " ".join([".venv/bin/python", "bench/soak.py", *sys.argv[1:]])
    env = dict(kv.split("=", 1) for kv in args.gateway_env)
    failed = False
    try:
        with (
            export_ref(args.ref) as (code_dir, exported),
            Servers(args.serve_arg, env, "soak", code_dir=code_dir) as servers,
        ):
            info = machine(exported)
            lines = [
                "## Latest `bench/soak.py` results",
                "",
                f"- Command: `{command}`",
                f"- Date: {info['date']}; commit {info['commit']}",
                f"- Machine: {info['arch']}, {info['nproc']} CPUs ({info['cpu']}); "
                f"Python {info['python']}",
                f"- {args.clients} clients (asyncio + httpx, in one process on the same "
                f"machine), operation mix "
                f"{', '.join(f'{m.__name__[1:]} {w:.0%}' for w, m in MIX)}; gateway flags: "
                f"{' '.join(args.serve_arg) or 'defaults'}",
                "",
            ]
            first = rss_kb(servers.gateway.pid)
            for name in args.scenario_names:
                servers.reset()
                before = rss_kb(servers.gateway.pid)
                gw, fake = servers.gateway.pid, servers.fake.pid
                cpu0 = cpu_seconds(gw), cpu_seconds(fake), own_cpu_seconds(), busy_seconds()
                started = time.monotonic()
                tally = asyncio.run(drive(servers, name, args))
                seconds = time.monotonic() - started
                gw_cpu = cpu_seconds(gw) - cpu0[0]
                ours = gw_cpu + cpu_seconds(fake) - cpu0[1] + own_cpu_seconds() - cpu0[2]
                others = max(0.0, (busy_seconds() - cpu0[3] - ours) / seconds)
                servers.set_faults({})  # so the readiness probe sees a healthy upstream
                upstream = servers.stats()
                after = rss_kb(servers.gateway.pid)
                ready = readiness(servers)
                block = summarize(
                    name, tally, seconds, before, after, upstream, ready, (gw_cpu, others)
                )
                if name == "hostile":  # refused bodies' pages go back a second later
                    time.sleep(3)
                    settled = mib(rss_kb(servers.gateway.pid)["VmRSS"])
                    block.insert(-1, f"- gateway RSS 3 s after the attack: {settled}")
                print("\n".join(block), flush=True)
                lines += block
                failed |= any(s >= 500 for s in tally.status)
            last = rss_kb(servers.gateway.pid)
            lines.append(
                f"Gateway RSS over the whole soak: {mib(first['VmRSS'])} at start, "
                f"{mib(last['VmRSS'])} at the end, peak {mib(last['VmHWM'])}."
            )
    except BenchTimeout as exc:
        print(f"bench/soak.py: {exc}; servers stopped", file=sys.stderr)
        return 3
    finally:
        signal.alarm(0)
    text = "\n".join(lines) + "\n"
    print(lines[-1])
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.txt"
        path.write_text(text)
        print(f"saved {path.relative_to(REPO)}")
    if args.write_md:
        replace_section(REPO / "BENCHMARKS.md", "soak", text, INTRO)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
