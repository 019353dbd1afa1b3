"""The OMS REST client: one pooled transport per app, one `UpstreamSession` per operation."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway.errors import (
    BadCredentials,
    MissingCredentials,
    TransportFailure,
    TransportTimeout,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPageCapped,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_status,
    error_for_transport,
)
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.settings import Settings
from gateway.upstream.resilience import (
    PROBE,
    RETRYABLE_STATUSES,
    Clock,
    Resilience,
    Verdicts,
    retry_after_seconds,
)
from gateway.upstream.transports import (
    BodyRefused,
    Reply,
    Transport,
    open_transport,
)

log = logging.getLogger("gateway.upstream")
readiness_log = logging.getLogger("gateway.readiness")

LIST_PATH = "/api/v1/oms/order_items/"
SIMPLE_PATH = "/api/v1/oms/order_items/list-simple/"
DETAIL_PATH = "/api/v1/oms/order_items/{id}/"
# The template's halves, joined by an f-string per call: `str.format` parses the template
# every time (~2k instructions more per detail call).
_DETAIL_HEAD, _DETAIL_TAIL = DETAIL_PATH.split("{id}")

ListKind = Literal["full", "simple"]
Item = dict[str, Any]
Params = dict[str, str | int]


class _NoSlot(TransportTimeout):
    """Every upstream slot stayed busy until the operation's deadline."""


@dataclass(frozen=True, slots=True)
class Page:
    count: int
    results: list[Item]


def open_http_client(settings: Settings) -> Transport:
    """The single pooled transport the app keeps for its lifetime (opened in the lifespan)."""
    return open_transport(settings)


class OmsClient:
    """The upstream for the app's lifetime: the pooled transport behind the resilience rules."""

    def __init__(
        self,
        transport: Transport,
        settings: Settings,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.resilience = Resilience(settings, clock)
        self.clock = self.resilience.clock
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing(enabled=False)
        self._connect_timeout = settings.upstream_connect_timeout
        self._read_timeout = settings.upstream_read_timeout
        self._total_timeout = settings.upstream_total_timeout

    async def get_json(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
        verdicts: Verdicts | None = None,
        key: str | None = None,
    ) -> Any:
        """GET with retries, the breaker and the deadline; the decoded JSON body or an error.
        `verdicts` tells the breaker each outcome once per operation; `key` names the client
        input an error answer may be about (a transport failure never is)."""
        resilience = self.resilience
        verdicts = verdicts or Verdicts()
        policy, breaker, clock = resilience.policy, resilience.breaker, self.clock
        for attempt in range(1, policy.max_retries + 2):
            if deadline - clock.monotonic() <= 0:
                raise _failed(
                    UpstreamTimeout(f"The operation ran out of time before {endpoint}."),
                    attempt - 1, "deadline",
                )  # fmt: skip
            permit = breaker.allow()
            if permit is None:
                raise _failed(
                    UpstreamUnavailable(
                        "The OMS API is failing; calls are paused for a moment (circuit open)."
                    ),
                    attempt - 1, "circuit_open",
                )  # fmt: skip
            probe = permit is PROBE
            delay: float | None = None
            if attempt > 1:
                self.metrics.upstream_retries.labels(endpoint).inc()
            try:
                reply = await self._attempt(url, endpoint, params, headers, deadline)
            except _NoSlot as exc:
                # The gateway's own cap, not the upstream, ran out of room: no verdict on it.
                if probe:
                    breaker.release_probe()
                raise _failed(error_for_transport(exc, endpoint), attempt, "no_slot") from exc
            except TransportFailure as exc:
                verdicts.record(breaker, False, probe=probe)
                error: UpstreamError = _failed(error_for_transport(exc, endpoint), attempt, exc)
                if attempt > policy.max_retries or not exc.retryable:
                    raise error from exc
            except BodyRefused as exc:
                # An answer came, as with undecodable JSON: the upstream is up, the body is bad.
                verdicts.record(breaker, True, probe=probe)
                bad = UpstreamBadResponse(f"The OMS API sent {endpoint} with {exc}.")
                raise _failed(bad, attempt, "body_refused") from None
            except BaseException:
                if probe:
                    breaker.release_probe()
                raise
            else:
                status = reply.status
                verdicts.record(breaker, status < 500, probe=probe, key=key)
                if status == 200:
                    try:
                        return _decode(reply, endpoint)
                    except UpstreamBadResponse as bad:
                        raise _failed(bad, attempt, "bad_response")  # noqa: B904 -- same error
                error = _failed(error_for_status(status, endpoint), attempt, status)
                if attempt > policy.max_retries or status not in RETRYABLE_STATUSES:
                    raise error
                delay = retry_after_seconds(reply.headers.get("retry-after"), clock.wall())
            if delay is None:
                delay = policy.backoff(attempt, resilience.rng)
            if clock.monotonic() + delay >= deadline:
                raise error  # waiting would outlive the operation
            await clock.sleep(delay)
        raise AssertionError("unreachable")

    async def reachable(self, timeout: float = 2.0) -> bool:
        """Whether the upstream gives any HTTP answer (401 without a token is fine)."""
        try:
            async with asyncio.timeout(timeout):
                await self.transport.get(
                    LIST_PATH,
                    {"limit": 1},
                    {},
                    connect_timeout=timeout,
                    read_timeout=timeout,
                )
        except (TransportFailure, BodyRefused, TimeoutError) as exc:
            # The cause, once per probe (the app caches probes): the endpoint template and the
            # exception class, never a URL with credentials in it.
            readiness_log.warning(
                "readiness probe failed: %s %s", LIST_PATH, type(exc).__name__,
                extra={"endpoint": LIST_PATH, "cause": type(exc).__name__},
            )  # fmt: skip
            return False
        return True

    def _attempt(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
    ) -> Awaitable[Reply]:
        """One measured, traced attempt; `traceparent` goes upstream with it."""
        if self.tracing.tracer is None:  # no span: not even an empty context to enter
            return self._send(url, endpoint, params, headers, deadline, None)
        return self._traced(url, endpoint, params, headers, deadline)

    async def _traced(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
    ) -> Reply:
        with self.tracing.span("oms.request", "CLIENT", **{"http.route": endpoint}) as span:
            self.tracing.inject(headers)
            return await self._send(url, endpoint, params, headers, deadline, span)

    async def _send(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
        span: Any,
    ) -> Reply:
        """The attempt itself, measured from before its wait for a slot to its last byte."""
        started = time.perf_counter()
        status = "error"
        slots = self.resilience.slots
        try:
            if slots.locked():
                try:
                    async with asyncio.timeout(deadline - self.clock.monotonic()):
                        await slots.acquire()
                except TimeoutError:
                    raise _NoSlot("no upstream slot before the deadline", retryable=True) from None
            else:
                # A free slot is taken without suspending, so no timer is needed to bound the
                # wait (nothing runs between the check and the take).
                await slots.acquire()
            try:
                # The total timeout bounds the whole attempt, connect to the body's last byte.
                budget = deadline - self.clock.monotonic()
                if budget > self._total_timeout:
                    budget = self._total_timeout
                timer = _Timer(budget)
                try:
                    reply = await self.transport.get(
                        url,
                        params,
                        headers,
                        connect_timeout=self._connect_timeout
                        if budget > self._connect_timeout
                        else budget,
                        read_timeout=self._read_timeout if budget > self._read_timeout else budget,
                    )
                except asyncio.CancelledError:
                    if timer.finish():
                        raise TransportTimeout(
                            "the attempt outlived its total timeout", retryable=False
                        ) from None
                    raise
                except BaseException:
                    timer.finish()
                    raise
                timer.finish()
            finally:
                slots.release()
            status = str(reply.status)
            if span is not None:
                span.set_attribute("http.response.status_code", reply.status)
                if reply.status >= 500:
                    self.tracing.fail(span, status)
            return reply
        except TransportTimeout:
            status = "timeout"
            raise
        except TransportFailure:
            status = "transport_error"
            raise
        except BodyRefused:
            status = "body_refused"
            raise
        finally:
            self.metrics.upstream_attempt(endpoint, status, time.perf_counter() - started)


class _Timer:
    """What `asyncio.timeout(budget)` does around one attempt, for a third of its cost: a timer
    that cancels the task when the budget runs out, and the check that tells that cancellation
    from any other (one made by the caller still propagates as a cancellation)."""

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, budget: float) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("an upstream attempt runs in a task")
        loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self._fired = False
        self._handle = loop.call_later(budget, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def finish(self) -> bool:
        """Stop the timer, once the attempt ended however it did: True when the cancellation
        being handled is the timer's, so a timeout (the task's count of cancellations is put
        back, as `asyncio.timeout` does)."""
        self._handle.cancel()
        return self._fired and self._task.uncancel() <= self._cancelling


def _failed(error: UpstreamError, attempts: int, cause: object) -> UpstreamError:
    """Note on the error what the log line needs: attempts made and the status or exception."""
    error.attempts = attempts
    error.cause = cause if isinstance(cause, str | int) else type(cause).__name__
    return error


@dataclass(slots=True)
class UpstreamSession:
    """The upstream as one operation sees it: its credentials, deadline and the calls it made."""

    client: OmsClient
    authorization: str | None
    deadline: float
    request_id: str | None = None
    calls: dict[str, int] = field(default_factory=dict)
    verdicts: Verdicts = field(default_factory=Verdicts)  # this operation's word to the breaker
    # Seconds during which at least one upstream call was in flight (overlaps counted once).
    upstream_wait: float = 0.0
    _in_flight: int = 0
    _busy_since: float = 0.0
    _logged: set[tuple[str, str]] = field(default_factory=set)

    async def list_page(
        self, kind: ListKind, *, limit: int, page: int, order_number: str | None
    ) -> Page:
        params: Params = {"limit": limit, "page": page}
        if order_number is not None:
            params["order_number"] = order_number
        path = LIST_PATH if kind == "full" else SIMPLE_PATH
        # A filter is free text from the client: an upstream error for one value counts once.
        key = None if order_number is None else f"order_number={order_number}"
        body = await self._get(path, path, params, key)
        try:
            result = _parse_page(body, nested=kind == "full", endpoint=path)
        except UpstreamBadResponse as error:
            raise self._bad(path, error)  # noqa: B904 -- the same exception, now logged
        expected = max(0, min(limit, result.count - (page - 1) * limit))
        served = len(result.results)
        if 0 < served < expected:
            # The server caps pages below our limit (DRF's max_page_size): its page `page` is
            # not ours, so the caller learns the cap and re-plans rather than slice it.
            raise UpstreamPageCapped(path, limit=limit, page=page, served=served)
        if served != expected:
            # More than asked, or nothing where items exist: slicing would drop or repeat items.
            raise self._bad(
                path,
                UpstreamBadResponse(
                    f"The OMS API sent {served} items for a page of {limit} from {path}."
                ),
            )
        return result

    async def detail(self, item_id: int) -> Item:
        body = await self._get(f"{_DETAIL_HEAD}{item_id}{_DETAIL_TAIL}", DETAIL_PATH, None)
        if not _is_item(body, nested=True) or body["id"] != item_id:
            error = UpstreamBadResponse(f"The OMS API sent a mis-shaped item for {DETAIL_PATH}.")
            raise self._bad(DETAIL_PATH, error)
        item: Item = body
        return item

    async def _get(
        self, url: str, endpoint: str, params: Params | None, key: str | None = None
    ) -> Any:
        if self.authorization is None:
            raise MissingCredentials()
        if not self.authorization.strip():
            raise BadCredentials()
        if not (self.authorization.isascii() and self.authorization.isprintable()):
            # httpx could not encode it; never echoed
            raise BadCredentials("The Authorization header must be printable ASCII.")
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        headers = {"Authorization": self.authorization}
        if self.request_id:
            headers["X-Request-ID"] = self.request_id
        if self._in_flight == 0:
            self._busy_since = time.perf_counter()
        self._in_flight += 1
        try:
            return await self.client.get_json(
                url, endpoint, params, headers, self.deadline, self.verdicts, key
            )
        except UpstreamError as error:
            self._log_failure(endpoint, error)
            raise
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.upstream_wait += time.perf_counter() - self._busy_since

    def _bad(self, endpoint: str, error: UpstreamBadResponse) -> UpstreamBadResponse:
        """A body that arrived but broke the contract: logged like any other failure."""
        error.cause = "bad_response"
        error.attempts = max(error.attempts, 1)  # at least the one that brought the body
        self._log_failure(endpoint, error)
        return error

    def _log_failure(self, endpoint: str, error: UpstreamError) -> None:
        """One WARNING per endpoint and cause per operation: a hundred failing ids that fail
        the same way are one line. Never the token, the URL's values or a body."""
        if isinstance(error, UpstreamNotFound):
            return  # a missing item is data, not a failure
        key = (endpoint, str(error.cause))
        if key in self._logged:
            return
        self._logged.add(key)
        log.warning(
            "upstream call failed: %s %s after %s attempt(s) -> %s",
            endpoint, error.cause, error.attempts, error.code,
            extra={
                "request_id": self.request_id, "endpoint": endpoint, "cause": error.cause,
                "attempts": error.attempts, "code": error.code,
            },
        )  # fmt: skip


def _decode(reply: Reply, endpoint: str) -> Any:
    content_type = reply.headers.get("content-type", "")
    if "json" not in content_type.split(";", 1)[0]:
        raise UpstreamBadResponse(f"The OMS API sent {endpoint} as non-JSON.")
    body = reply.body
    if len(body) >= _WRAP_FROM:
        value = _loads_wrapped(body)
        if value is not _REFUSED:
            return value
    try:
        value = orjson.loads(body)
        # The answer nests the body a few levels deeper, and orjson writes at most 254 levels:
        # a body that would not fit is refused here, on its own field, not as a 500 later.
        # Each level opens with a `[` or `{` (those in strings only over-count), so a small body
        # with few enough of them fits without the probe.
        if len(body) > _COUNT_UPTO or body.count(b"{") + body.count(b"[") > _PROBE_FREE:
            probe = value
            for _ in range(_ANSWER_LEVELS):
                probe = [probe]
            orjson.dumps(probe)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadResponse(f"The OMS API sent undecodable JSON for {endpoint}.") from exc
    except orjson.JSONEncodeError as exc:
        raise UpstreamBadResponse(f"The OMS API sent JSON nested too deep for {endpoint}.") from exc
    return value


def _loads_wrapped(body: bytes) -> Any:
    """The body decoded inside `_WRAPPERS` lists, so that the decoder's own depth limit refuses
    exactly what the probe above refuses, without a second pass over a large body (a 94.6 KB
    page: ~395 vs ~450 us). `_REFUSED` for any body it does not accept: the probe's path then
    says why, as for every body. A wrapper holding anything but one value means the body was
    not one JSON value (`1],[2` closes a wrapper and opens another)."""
    try:
        value = orjson.loads(b"".join((_OPEN, body, _CLOSE)))
        # Each wrapper is a list (its text starts with the next one's `[`): unpacking eight at
        # a time takes the one value of each, or raises (a loop of `len` checks costs ~4x,
        # two at a time ~10% more).
        for _ in range(_WRAPPERS // 8):
            ((((((((value,),),),),),),),) = value
        for _ in range(_WRAPPERS % 8):
            (value,) = value
    except ValueError:  # orjson.JSONDecodeError is one too
        return _REFUSED
    return value


_INT_MAX = 2**31 - 1

# The answer nests an upstream value at most 3 levels deeper than its body does (a page's
# `results` list becomes data.orderItems.edges[].node): the probe wraps the body in 8 levels
# before measuring it, so whatever passes also fits in the answer.
_ANSWER_LEVELS = 8
# orjson's limits (tests/gateway/test_attacks.py holds them): `loads` reads 1,024 levels,
# `dumps` writes 254. Wrapped in the difference, a body the probe accepts is exactly one `loads`
# accepts.
_LOADS_LEVELS, _DUMPS_LEVELS = 1024, 254
_WRAPPERS = _LOADS_LEVELS - (_DUMPS_LEVELS - _ANSWER_LEVELS)
# The deepest body the probe accepts: one with at most this many `[` and `{` needs no probe.
_PROBE_FREE = _DUMPS_LEVELS - _ANSWER_LEVELS
# Counting them costs ~11 instructions a byte, the probe ~15: a saving for a body that passes
# (a detail, ~2 KB: 33k -> 25k), a loss for one that does not, so only small bodies are
# counted (pages of up to ~8 items fit; past ~20 items their brackets never would).
_COUNT_UPTO = 16_384
_OPEN, _CLOSE = b"[" * _WRAPPERS, b"]" * _WRAPPERS
# The probe costs ~1.2 us per KB, the wrappers a fixed ~40 us: even at ~50 KB (a detail is ~2).
_WRAP_FROM = 50_000
_REFUSED = object()


# The item fields list-simple names by id only (every other field is in both lists): the one
# declaration of that fact; the planner sends a selection past these ids to the full list.
SIMPLE_BY_ID = ("state", "product")


def _is_item(value: Any, *, nested: bool) -> bool:
    return _all_items((value,), nested=nested)


def _all_items(values: list[Any] | tuple[Any], *, nested: bool) -> bool:
    shape = dict if nested else int
    state, product = SIMPLE_BY_ID
    # One plain loop, no call per item: a page checks each of its items (50: 15 -> 9 us).
    for value in values:
        if (
            type(value) is not dict
            or type(value.get("id")) is not int
            or type(value.get(state)) is not shape
            or type(value.get(product)) is not shape
        ):
            return False
    return True


def _parse_page(body: Any, *, nested: bool, endpoint: str) -> Page:
    if (
        type(body) is not dict
        or type(body.get("count")) is not int
        or not 0 <= body["count"] <= _INT_MAX  # `totalCount` is a GraphQL Int
        or type(body.get("results")) is not list
        or not _all_items(body["results"], nested=nested)
    ):
        raise UpstreamBadResponse(f"The OMS API sent a mis-shaped page for {endpoint}.")
    results: list[Item] = body["results"]
    if not nested:
        # list-simple names these by id; give them the object shape of the schema.
        for item in results:
            for key in SIMPLE_BY_ID:
                item[key] = {"id": item[key]}
    return Page(count=body["count"], results=results)
