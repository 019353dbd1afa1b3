"""One client cannot open the shared circuit breaker for everyone, and readiness ignores it."""

from __future__ import annotations

from gateway.errors import ErrorCode
from gateway.fake_upstream.app import Faults
from gateway.upstream.resilience import BreakerState, CircuitBreaker, Verdicts

BREAKER = dict(
    breaker_min_calls=4,
    breaker_failure_ratio=0.5,
    breaker_window=60.0,
    breaker_cooldown=60.0,
    upstream_retries=0,
)
POISON = "POISON-1"
LEGIT = "{ orderItem(id: 1) { id } }"


def poisoned_operation(aliases: int) -> str:
    fields = " ".join(
        f'a{i}: orderItems(orderNumber: "{POISON}", first: {i + 1}) {{ totalCount nodes {{ id }} }}'
        for i in range(aliases)
    )
    return "{ " + fields + " }"


def breaker_state(gateway) -> str:
    ready = gateway.client.get(f"{gateway.url}/readyz")
    assert ready.status_code == 200, "the breaker never drains the instance"
    state: str = ready.json()["circuit_breaker"]
    return state


def test_a_poisoned_filter_sent_again_and_again_leaves_others_served(make_gateway, upstream):
    gateway = make_gateway(**BREAKER)
    upstream.fake.faults = Faults(kind="status", status=500, order_number=POISON)
    for _ in range(12):
        body = gateway.query(poisoned_operation(10))
        assert body["data"] == {f"a{i}": None for i in range(10)}  # nullable roots: each slot fails
        assert {e["extensions"]["code"] for e in body["errors"]} == {ErrorCode.UPSTREAM_ERROR}
        assert gateway.data(LEGIT) == {"orderItem": {"id": "1"}}  # another client, served
    # 12 operations × 10 aliases reached the OMS and failed; the breaker heard one failure.
    assert upstream.calls("list-simple") + upstream.calls("list") == 120
    assert breaker_state(gateway) == "closed"


def test_an_operation_counts_once_however_many_of_its_calls_fail(make_gateway, upstream):
    gateway = make_gateway(**BREAKER)
    upstream.fake.faults = Faults(kind="status", status=500, endpoints=frozenset({"detail"}))
    ids = "[" + ", ".join(str(i) for i in range(1, 11)) + "]"
    for _ in range(3):  # 30 failing calls, but three operations: below breaker_min_calls
        gateway.query(f"{{ orderItemsByIds(ids: {ids}) {{ id }} }}")
    assert upstream.calls("detail") == 30
    assert breaker_state(gateway) == "closed"
    gateway.query(f"{{ orderItemsByIds(ids: {ids}) {{ id }} }}")  # the fourth failing client
    assert breaker_state(gateway) == "open"
    response = gateway.query(LEGIT)
    assert response["errors"][0]["extensions"]["code"] == ErrorCode.UPSTREAM_UNAVAILABLE


def test_an_upstream_that_fails_every_filter_still_opens_the_breaker(make_gateway, upstream):
    # Distinct inputs failing is the upstream's health, not one client's poison.
    gateway = make_gateway(**BREAKER)
    upstream.fake.faults = Faults(kind="status", status=500)
    for n in range(4):
        gateway.query(f'{{ orderItems(orderNumber: "ORDER-{n}", first: 1) {{ totalCount }} }}')
    assert breaker_state(gateway) == "open"


# --- the rules, with an injected clock ---------------------------------------------------------


def test_the_same_failing_input_counts_once_per_window():
    now = [0.0]
    breaker = CircuitBreaker(
        failure_ratio=0.5, min_calls=2, window=10.0, cooldown=5.0, clock=lambda: now[0]
    )
    for _ in range(3):
        breaker.record(True)
    for _ in range(50):
        breaker.record(False, key="order_number=X")
    assert breaker.state is BreakerState.CLOSED  # 1 failure of 4, not 50 of 53
    now[0] = 10.5  # all of that left the window: the same input counts again
    breaker.record(True)
    breaker.record(False, key="order_number=X")
    assert breaker.state is BreakerState.OPEN


def test_verdicts_report_one_failure_per_operation_and_every_success():
    now = [0.0]
    breaker = CircuitBreaker(
        failure_ratio=0.5, min_calls=4, window=10.0, cooldown=5.0, clock=lambda: now[0]
    )
    verdicts = Verdicts()  # one operation: one bad call among nine good ones, then 20 bad ones
    for success in (False, *[True] * 9, *[False] * 20):
        verdicts.record(breaker, success, probe=False)
    assert breaker.state is BreakerState.CLOSED  # 1 failure in 10 verdicts, not 21 in 30
    for _ in range(9):  # nine more operations whose calls all fail: 10 failures in 19
        Verdicts().record(breaker, False, probe=False)
    assert breaker.state is BreakerState.OPEN
