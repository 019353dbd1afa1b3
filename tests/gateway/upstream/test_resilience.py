"""Retries, Retry-After, deadlines, the circuit breaker, the concurrency cap and load shedding."""

from __future__ import annotations

import email.utils
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.upstream.resilience import (
    BreakerState,
    CircuitBreaker,
    Permit,
    RetryPolicy,
    retry_after_seconds,
)
from tests.conftest import AUTH
from tests.support import FakeClock

# Run the tests that use `make_gateway` once per upstream transport (tests/conftest.py).
EACH_UPSTREAM_CLIENT = True

DETAIL = "{ orderItem(id: 2) { id } }"
DETAIL_PATH = "/api/v1/oms/order_items/{}/"


def error_of(response):
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    return error


def concurrently(url, bodies, headers=AUTH, timeout=30.0, release=None):
    """POST each body from its own thread and client, all released at once; keeps the order.
    With `release=(ready, event)`, set `event` once `ready(answers so far)` holds (or after a
    10 s hang guard, and then the test's own assertions fail)."""
    barrier = threading.Barrier(len(bodies))

    def send(body):
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            barrier.wait(timeout=10)
            return client.post(f"{url}/graphql", json=body, headers=headers)

    with ThreadPoolExecutor(len(bodies)) as pool:
        futures = [pool.submit(send, body) for body in bodies]
        if release is not None:
            ready, event = release
            guard = time.monotonic() + 10  # a hang guard only: `ready` decides
            while not ready(sum(f.done() for f in futures)) and time.monotonic() < guard:
                time.sleep(0.01)
            event.set()
        return [f.result() for f in futures]


# --- retries ---------------------------------------------------------------------------------


def test_twenty_percent_503s_become_over_99_percent_success(make_gateway, upstream):
    """300 operations from 4 clients against 20% injected 503s, with the default retry policy.

    The fake decides each call from (seed, path, attempt number), so the fault schedule is the
    same on every run however the clients interleave, and the expected outcome can be computed:
    an operation fails only when all three of its attempts (1 + 2 retries) meet a 503. On a
    fake clock, each retry's wait is what the upstream asked for (Retry-After: 0), nothing more.
    """
    clock = FakeClock()
    gateway = make_gateway(clock=clock)
    faults = Faults(kind="status", status=503, retry_after="0", rate=0.2, per_path=True)
    upstream.fake.faults = faults
    ids = list(range(1, 301))

    def run(chunk):
        results = []
        with httpx.Client(timeout=30, trust_env=False) as client:
            for item_id in chunk:
                started = time.perf_counter()
                response = client.post(
                    f"{gateway.url}/graphql",
                    json={"query": f"{{ orderItem(id: {item_id}) {{ id }} }}"},
                    headers=AUTH,
                )
                results.append((item_id, response, time.perf_counter() - started))
        return results

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = [r for chunk in pool.map(run, [ids[k::4] for k in range(4)]) for r in chunk]
    wall = time.perf_counter() - started

    assert all(response.status_code == 200 for _, response, _ in results)
    failed = {i for i, response, _ in results if "errors" in response.json()}
    for item_id, response, _ in results:
        body = response.json()
        if item_id in failed:
            assert body["errors"][0]["extensions"] == {
                "code": ErrorCode.UPSTREAM_ERROR,
                "upstreamStatus": 503,
            }
        else:
            assert body == {"data": {"orderItem": {"id": str(item_id)}}}

    def hit(item_id, attempt):
        return faults.draw(DETAIL_PATH.format(item_id) + "?", attempt) < faults.rate

    expected_failed = {i for i in ids if all(hit(i, a) for a in (1, 2, 3))}
    expected_calls = sum(next((a for a in (1, 2, 3) if not hit(i, a)), 3) for i in ids)
    assert failed == expected_failed
    assert upstream.calls("detail") == expected_calls > 300  # the retries happened
    success = 1 - len(failed) / len(ids)
    latencies = sorted(seconds for _, _, seconds in results)
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    print(
        f"\n20% 503s: {len(ids) - len(failed)}/{len(ids)} succeeded ({success:.2%}), "
        f"{expected_calls} upstream calls, {faults.injected} injected 503s, "
        f"p99 {p99 * 1000:.0f} ms, wall {wall:.2f} s"
    )
    assert success > 0.99
    assert clock.sleeps == [0.0] * (expected_calls - len(ids))  # one wait per retry, of 0 s


@pytest.mark.parametrize(
    ("faults", "query", "code", "calls"),
    [
        (Faults(kind="status", status=400), DETAIL, ErrorCode.UPSTREAM_ERROR, 1),
        (None, "{ orderItem(id: 999999) { id } }", None, 1),  # 404: a null, never retried
        (Faults(kind="status", status=401), DETAIL, ErrorCode.UNAUTHENTICATED, 1),
        (Faults(kind="status", status=403), DETAIL, ErrorCode.FORBIDDEN, 1),
        (Faults(kind="status", status=422), DETAIL, ErrorCode.UPSTREAM_ERROR, 1),
        (Faults(kind="status", status=500), DETAIL, ErrorCode.UPSTREAM_ERROR, 1),
        (Faults(kind="status", status=429, retry_after="0"), DETAIL, ErrorCode.UPSTREAM_ERROR, 3),
        (Faults(kind="status", status=503, retry_after="0"), DETAIL, ErrorCode.UPSTREAM_ERROR, 3),
        (Faults(kind="status", status=504), DETAIL, ErrorCode.UPSTREAM_ERROR, 3),
    ],
    ids=["400", "404", "401", "403", "422", "500", "429", "503", "504"],
)
def test_which_statuses_are_retried(make_gateway, upstream, faults, query, code, calls):
    gateway = make_gateway()
    if faults is not None:
        upstream.fake.faults = faults
    body = gateway.query(query)
    if code is None:
        assert body == {"data": {"orderItem": None}}
    else:
        assert body["errors"][0]["extensions"]["code"] == code
    assert upstream.calls("detail") == calls


def test_retry_after_seconds_is_honoured(make_gateway, upstream):
    clock = FakeClock()
    gateway = make_gateway(clock=clock)
    upstream.fake.faults = Faults(kind="status", status=503, retry_after="1", times=1)
    assert gateway.data(DETAIL) == {"orderItem": {"id": "2"}}
    assert upstream.calls("detail") == 2
    assert clock.sleeps == [1.0]


def test_retry_after_http_date_is_honoured(make_gateway, upstream):
    clock = FakeClock(wall=1_800_000_000.0)
    gateway = make_gateway(clock=clock)
    when = email.utils.formatdate(clock.wall() + 2, usegmt=True)
    upstream.fake.faults = Faults(kind="status", status=503, retry_after=when, times=1)
    assert gateway.data(DETAIL) == {"orderItem": {"id": "2"}}
    assert upstream.calls("detail") == 2
    assert clock.sleeps == [2.0]


def test_retry_after_beyond_the_deadline_gives_up_at_once(make_gateway, upstream):
    clock = FakeClock()
    gateway = make_gateway(clock=clock, operation_timeout=2.0)
    upstream.fake.faults = Faults(kind="status", status=503, retry_after="5")
    response = gateway.post(DETAIL)
    assert error_of(response)["extensions"] == {
        "code": ErrorCode.UPSTREAM_ERROR,
        "upstreamStatus": 503,
    }
    assert upstream.calls("detail") == 1
    assert clock.sleeps == []  # no wait that would outlive the operation


def test_retries_stop_at_the_operation_deadline(make_gateway, upstream):
    clock = FakeClock()  # stands still but for the waits: only backoff spends the deadline
    # Fake seconds, scaled so the last attempt's real read budget (what the deadline leaves
    # after the last wait, enforced by the transport in real time) is seconds, not the
    # milliseconds a busy machine can overrun: at 0.6 s / 0.1 s this failed once under load.
    gateway = make_gateway(
        clock=clock,
        operation_timeout=600,
        upstream_retries=100,
        upstream_backoff_base=100,
        upstream_backoff_max=100,
        breaker_min_calls=1000,  # keep the breaker out of this
    )
    upstream.fake.faults = Faults(kind="status", status=503)
    response = gateway.post(DETAIL)
    # The last 503 stands once the next wait (at most 100 s) would pass the deadline.
    assert error_of(response)["extensions"] == {
        "code": ErrorCode.UPSTREAM_ERROR,
        "upstreamStatus": 503,
    }
    assert all(0 <= s <= 100 for s in clock.sleeps)
    assert 500 <= sum(clock.sleeps) < 600
    assert upstream.calls("detail") == len(clock.sleeps) + 1 < 100


def test_a_hang_is_cut_at_the_operation_deadline(make_gateway, upstream):
    # Neither the read timeout (5 s) nor the attempt's total (12 s) ends a 2 s hang, and after
    # it the call succeeds: a timeout can only be the 0.5 s operation deadline's.
    gateway = make_gateway(operation_timeout=0.5, upstream_read_timeout=5.0)
    upstream.fake.faults = Faults(kind="hang", hang=2.0)
    assert error_of(gateway.post(DETAIL))["extensions"] == {"code": ErrorCode.UPSTREAM_TIMEOUT}
    assert upstream.calls("detail") == 1


def test_the_deadline_covers_the_retries(make_gateway, upstream):
    # The first attempt spends 0.3 s of the 0.5 s operation on a retryable 503; the retry meets
    # a 2 s hang. With a fresh read timeout (10 s) it would wait the hang out and succeed; it
    # gets only the 0.2 s left, so the operation times out.
    clock = FakeClock()
    gateway = make_gateway(clock=clock, operation_timeout=0.5, breaker_min_calls=1000)

    def slow_503_then_hang():
        clock.advance(0.3)
        upstream.fake.faults = Faults(kind="hang", hang=2.0)

    upstream.fake.faults = Faults(
        kind="status", status=503, retry_after="0", on_call=slow_503_then_hang
    )
    assert error_of(gateway.post(DETAIL))["extensions"] == {"code": ErrorCode.UPSTREAM_TIMEOUT}
    assert upstream.calls("detail") == 2
    assert clock.sleeps == [0.0]


# --- circuit breaker -------------------------------------------------------------------------

BREAKER = dict(
    breaker_min_calls=4,
    breaker_failure_ratio=0.5,
    breaker_window=10.0,
    breaker_cooldown=0.5,
    upstream_retries=0,
)


def test_breaker_opens_fails_fast_probes_and_closes(make_gateway, upstream, http):
    clock = FakeClock()  # the cooldown passes when the test says so
    gateway = make_gateway(clock=clock, **BREAKER)
    upstream.fake.faults = Faults(kind="status", status=500)
    for _ in range(4):
        assert error_of(gateway.post(DETAIL))["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR
    assert upstream.calls("detail") == 4

    for _ in range(5):  # open: fail fast, no call reaches the OMS
        response = gateway.post(DETAIL)
        assert error_of(response)["extensions"] == {"code": ErrorCode.UPSTREAM_UNAVAILABLE}
    assert upstream.calls("detail") == 4
    ready = http.get(f"{gateway.url}/readyz")  # its own reachability probe is a list call
    # An open breaker is reported but does not drain the instance (README "Deploying").
    assert ready.status_code == 200 and ready.json()["circuit_breaker"] == "open"

    clock.advance(0.6)  # half-open: one probe goes out and fails, so it opens again
    assert error_of(gateway.post(DETAIL))["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR
    assert upstream.calls("detail") == 5
    assert error_of(gateway.post(DETAIL))["extensions"]["code"] == ErrorCode.UPSTREAM_UNAVAILABLE
    assert upstream.calls("detail") == 5

    clock.advance(0.6)  # half-open again; the OMS has recovered: the probe closes the breaker
    upstream.fake.faults = Faults()
    assert gateway.data(DETAIL) == {"orderItem": {"id": "2"}}
    assert upstream.calls("detail") == 6
    assert gateway.data("{ orderItem(id: 3) { id } }") == {"orderItem": {"id": "3"}}
    assert upstream.calls("detail") == 7
    assert http.get(f"{gateway.url}/readyz").json()["circuit_breaker"] == "closed"


def test_breaker_stays_closed_below_the_failure_ratio(make_gateway, upstream):
    gateway = make_gateway(**{**BREAKER, "breaker_failure_ratio": 0.6})
    for item_id in range(1, 11):  # every other call fails: never 60% of the calls
        upstream.fake.faults = Faults() if item_id % 2 else Faults(kind="status", status=500)
        gateway.post(f"{{ orderItem(id: {item_id}) {{ id }} }}")
    upstream.fake.faults = Faults()
    assert gateway.data(DETAIL) == {"orderItem": {"id": "2"}}
    assert upstream.calls() == 11


def test_half_open_lets_exactly_one_probe_through(make_gateway, upstream):
    clock = FakeClock()
    gateway = make_gateway(clock=clock, **BREAKER)
    upstream.fake.faults = Faults(kind="status", status=500)
    for _ in range(4):
        gateway.post(DETAIL)
    assert upstream.calls() == 4
    clock.advance(0.6)
    # Healthy, but every call is held until four operations have been answered: the probe
    # stays out while the others arrive, however slowly the machine sends them.
    hold = threading.Event()
    upstream.fake.faults = Faults(hold=hold)
    bodies = [{"query": f"{{ orderItem(id: {i}) {{ id }} }}"} for i in range(1, 6)]
    results = concurrently(gateway.url, bodies, release=(lambda answered: answered == 4, hold))
    outcomes = [r.json() for r in results]
    passed = [b for b in outcomes if "errors" not in b]
    refused = [b for b in outcomes if "errors" in b]
    assert len(passed) == 1 and len(refused) == 4
    assert {b["errors"][0]["extensions"]["code"] for b in refused} == {
        ErrorCode.UPSTREAM_UNAVAILABLE
    }
    assert upstream.calls() == 5


# --- concurrency cap and load shedding -------------------------------------------------------


def by_ids(first):
    return {"query": f"{{ orderItemsByIds(ids: [{first}, {first + 1}, {first + 2}]) {{ id }} }}"}


@pytest.mark.parametrize(("cap", "limit"), [(2, 2), (None, None)], ids=["capped", "uncapped"])
def test_upstream_concurrency_cap(make_gateway, upstream, cap, limit):
    gateway = make_gateway(upstream_concurrency=cap) if cap else make_gateway()
    # Calls are held until as many as the cap are in flight (three without one), so the
    # overlap is there however the machine schedules the clients; the cap stops a third.
    hold = threading.Event()
    upstream.fake.faults = Faults(hold=hold)
    ready = (lambda _: upstream.fake.in_flight >= (limit or 3), hold)
    results = concurrently(gateway.url, [by_ids(1 + 3 * k) for k in range(6)], release=ready)
    assert all("errors" not in r.json() for r in results)
    assert upstream.calls() == 18
    peak = upstream.fake.stats()["max_in_flight"]
    if limit is None:
        assert peak > 2  # the control: without a cap the same load overlaps more
    else:
        assert peak == limit


def until(condition, guard=10.0):
    """Wait for `condition` (polled; the guard only stops a hang, the test's asserts decide)."""
    stop = time.monotonic() + guard
    while not condition() and time.monotonic() < stop:
        time.sleep(0.01)


def test_a_full_upstream_pool_is_a_timeout_and_sends_nothing(make_gateway, upstream, caplog):
    """Every upstream slot busy until the deadline: UPSTREAM_TIMEOUT, and the call never goes out.

    Ordered by events, not timing. Operation B's first attempt is held upstream. The fake
    clock then spends all but 0.1 s of B's deadline, and operation A starts (with a deadline of
    its own, untouched): one of its two calls takes the other slot and is held too, so the
    second waits for a slot. Only then is B's attempt answered 503, Retry-After 0. The slot it
    frees goes to A's waiting call (asyncio's semaphore is first come, first served), so B's
    retry waits for a slot that A keeps until B has been answered, and its deadline ends first.
    (Each operation's slot wait is bounded by its own deadline, so the refused one must be the
    one whose deadline the clock has spent; with cap 1 nothing could show that A waits.)
    """
    clock = FakeClock()
    gateway = make_gateway(
        clock=clock, upstream_concurrency=2, operation_timeout=600, breaker_min_calls=1000
    )
    first, held = threading.Event(), threading.Event()
    upstream.fake.faults = Faults(kind="status", status=503, retry_after="0", hold=first)

    def post(query):
        with httpx.Client(timeout=30, trust_env=False) as client:
            return client.post(f"{gateway.url}/graphql", json={"query": query}, headers=AUTH)

    with ThreadPoolExecutor(2) as pool:
        try:
            b = pool.submit(post, DETAIL)
            until(lambda: upstream.fake.in_flight == 1)  # B holds one slot
            upstream.fake.faults = Faults(hold=held)
            clock.advance(600 - 0.1)
            a = pool.submit(post, "{ orderItemsByIds(ids: [3, 4]) { id } }")
            until(lambda: upstream.fake.in_flight == 2)  # A holds the other; its twin waits
            first.set()
            refused = b.result(timeout=30)
        finally:
            first.set()
            held.set()
        served = a.result(timeout=30)
    assert error_of(refused)["extensions"] == {"code": ErrorCode.UPSTREAM_TIMEOUT}
    assert served.json() == {"data": {"orderItemsByIds": [{"id": "3"}, {"id": "4"}]}}
    # B's retry never reached the OMS: it waited for a slot, not for an answer.
    assert upstream.calls("detail") == 3
    failures = [(r.cause, r.attempts) for r in caplog.records if r.name == "gateway.upstream"]
    assert failures == [("no_slot", 2)]  # the second attempt found no slot
    assert clock.sleeps == [0.0]  # the one wait before B's retry (Retry-After: 0)
    assert upstream.fake.stats()["max_in_flight"] == 2


def test_load_shedding(make_gateway, upstream, http):
    gateway = make_gateway(max_inflight_operations=2)
    # The two admitted operations are held upstream until the six others have been answered:
    # those are refused at once, since a queued one could only be answered after the hold.
    hold = threading.Event()
    upstream.fake.faults = Faults(hold=hold)
    bodies = [{"query": f"{{ orderItem(id: {i}) {{ id }} }}"} for i in range(1, 9)]
    results = concurrently(gateway.url, bodies, release=(lambda answered: answered == 6, hold))
    statuses = [r.status_code for r in results]
    assert sorted(statuses) == [200] * 2 + [503] * 6, statuses
    shed = [r for r in results if r.status_code == 503]
    served = [r for r in results if r.status_code == 200]
    for response in shed:
        assert response.headers["retry-after"] == "1"
        assert response.json()["errors"][0]["extensions"]["code"] == ErrorCode.OVERLOADED
    for response in served:
        assert "errors" not in response.json()
    assert upstream.calls() == len(served)
    # the health check is never shed, and the gateway serves again once the burst is over
    assert http.get(f"{gateway.url}/healthz").status_code == 200
    upstream.fake.faults = Faults()
    assert gateway.data(DETAIL) == {"orderItem": {"id": "2"}}


# --- units: backoff, Retry-After, breaker ----------------------------------------------------


def test_backoff_is_capped_exponential_with_full_jitter():
    policy = RetryPolicy(max_retries=5, base_delay=0.05, max_delay=1.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        cap = min(1.0, 0.05 * 2 ** (attempt - 1))
        samples = [policy.backoff(attempt, rng) for _ in range(400)]
        assert all(0 <= s <= cap for s in samples)
        assert max(samples) > 0.9 * cap and min(samples) < 0.1 * cap  # full jitter


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("3", 3.0),
        (" 7 ", 7.0),
        ("120", 120.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("1.5", None),  # delay-seconds is a whole number
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),  # an HTTP date, 30 s after `now`
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_retry_after_seconds(value, seconds):
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert retry_after_seconds(value, now=now) == seconds


def breaker(clock, **kw):
    options = dict(failure_ratio=0.5, min_calls=4, window=10.0, cooldown=5.0)
    return CircuitBreaker(**{**options, **kw}, clock=clock.monotonic)


def test_breaker_needs_min_calls():
    b = breaker(FakeClock())
    for _ in range(3):
        assert b.allow()
        b.record(False)
    assert b.state is BreakerState.CLOSED
    b.record(False)
    assert b.state is BreakerState.OPEN
    assert not b.allow()


def test_breaker_ratio():
    b = breaker(FakeClock(), min_calls=4, failure_ratio=0.5)
    for ok in (True, True, True, False, False):
        b.record(ok)
    assert b.state is BreakerState.CLOSED  # 2 of 5
    b.record(False)
    assert b.state is BreakerState.OPEN  # 3 of 6


def test_breaker_forgets_outcomes_older_than_the_window():
    clock = FakeClock()
    b = breaker(clock, window=10.0)
    for _ in range(3):
        b.record(False)
    clock.now += 11
    b.record(False)
    assert b.state is BreakerState.CLOSED  # only one failure in the window
    for _ in range(3):
        b.record(False)
    assert b.state is BreakerState.OPEN


def test_breaker_opens_exactly_when_a_full_scan_of_the_window_says_so():
    # The breaker keeps a running failure count; this checks it against counting from scratch.
    rng = random.Random(7)
    for _ in range(200):
        clock = FakeClock()
        b = breaker(clock, min_calls=5, failure_ratio=0.4, window=3.0)
        seen: list[tuple[float, bool]] = []
        for _ in range(60):
            clock.now += rng.choice([0.0, 0.1, 0.5, 1.0, 2.5])
            ok = rng.random() < 0.7
            b.record(ok)
            seen = [(t, o) for t, o in [*seen, (clock.now, ok)] if clock.now - t <= 3.0]
            failures = sum(not o for _, o in seen)
            should_open = len(seen) >= 5 and failures >= 0.4 * len(seen)
            assert (b.state is BreakerState.OPEN) == should_open
            if should_open:
                break


def test_breaker_cooldown_half_open_and_a_single_probe():
    clock = FakeClock()
    b = breaker(clock, cooldown=5.0)
    for _ in range(4):
        b.record(False)
    clock.now += 4.9
    assert not b.allow() and b.state is BreakerState.OPEN
    clock.now += 0.2
    assert b.allow() is Permit.PROBE and b.state is BreakerState.HALF_OPEN
    assert not b.allow()  # one probe at a time
    b.record(True)  # a call from before the breaker opened ends now: it decides nothing
    assert b.state is BreakerState.HALF_OPEN and not b.allow()
    b.release_probe()  # a cancelled probe frees the slot
    assert b.allow() is Permit.PROBE
    b.record(False, probe=True)  # the probe failed: open again, with a fresh cooldown
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now += 5.1
    assert b.allow() is Permit.PROBE
    b.record(True, probe=True)
    assert b.state is BreakerState.CLOSED
    assert b.allow() is Permit.CALL and b.allow() is Permit.CALL
    # closing forgot the old failures: it takes min_calls fresh outcomes to open again
    for _ in range(3):
        b.record(False)
    assert b.state is BreakerState.CLOSED
    assert b.transitions == 5  # open, half-open, open, half-open, closed
