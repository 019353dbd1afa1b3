"""The OMS REST client: one pooled httpx client per app, one `UpstreamSession` per operation."""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson

from gateway.errors import (
    MissingCredentials,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamNotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_status,
    error_for_transport,
)
from gateway.metrics import Metrics
from gateway.resilience import RETRYABLE_STATUSES, Permit, Resilience, retry_after_seconds
from gateway.settings import Settings
from gateway.tracing import Tracing

log = logging.getLogger("gateway.upstream")

LIST_PATH = "/api/v1/oms/order_items/"
SIMPLE_PATH = "/api/v1/oms/order_items/list-simple/"
DETAIL_PATH = "/api/v1/oms/order_items/{id}/"

ListKind = Literal["full", "simple"]
Item = dict[str, Any]
Params = dict[str, str | int]


class _NoSlot(httpx.PoolTimeout):
    """Every upstream slot stayed busy until the operation's deadline."""


# Failures where the request cannot have been processed upstream, so a GET is safe to repeat;
# a read timeout is not among them: repeating it would double the wait.
_RETRYABLE_TRANSPORT = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
    httpx.WriteError, httpx.PoolTimeout,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    count: int
    results: list[Item]


def open_http_client(settings: Settings) -> httpx.AsyncClient:
    """The single pooled client the app keeps for its lifetime (opened in the lifespan)."""
    return httpx.AsyncClient(
        base_url=settings.upstream_url,
        timeout=httpx.Timeout(
            settings.upstream_read_timeout, connect=settings.upstream_connect_timeout
        ),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
        headers={"Accept": "application/json"},
        # Every client's calls share this client: a cookie the upstream (or a sticky load
        # balancer) sets for one token must never ride along on another's request.
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        follow_redirects=False,
        trust_env=False,
    )


class OmsClient:
    """The upstream for the app's lifetime: the pooled client behind the resilience rules."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.http = http
        # Requests are built here rather than by `http.get`: merging the client's defaults per
        # call was about a sixth of an upstream call's CPU (bench/, profile).
        self._base = str(http.base_url).rstrip("/")
        self._headers = dict(http.headers)
        self.settings = settings
        self.resilience = Resilience(settings)
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing(enabled=False)

    async def get_json(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
    ) -> Any:
        """GET with retries, the breaker and the deadline; the decoded JSON body or an error."""
        resilience = self.resilience
        policy, breaker = resilience.policy, resilience.breaker
        for attempt in range(1, policy.max_retries + 2):
            if deadline - time.monotonic() <= 0:
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
            probe = permit is Permit.PROBE
            delay: float | None = None
            if attempt > 1:
                self.metrics.upstream_retries.labels(endpoint).inc()
            try:
                response = await self._attempt(url, endpoint, params, headers, deadline)
            except _NoSlot as exc:
                # The gateway's own cap, not the upstream, ran out of room: no verdict on it.
                if probe:
                    breaker.release_probe()
                raise _failed(error_for_transport(exc, endpoint), attempt, "no_slot") from exc
            except httpx.TransportError as exc:
                breaker.record(False, probe=probe)
                error: UpstreamError = _failed(error_for_transport(exc, endpoint), attempt, exc)
                if attempt > policy.max_retries or not isinstance(exc, _RETRYABLE_TRANSPORT):
                    raise error from exc
            except BaseException:
                if probe:
                    breaker.release_probe()
                raise
            else:
                status = response.status_code
                breaker.record(status < 500, probe=probe)
                if status == 200:
                    try:
                        return _decode(response, endpoint)
                    except UpstreamBadResponse as bad:
                        raise _failed(bad, attempt, "bad_response")  # noqa: B904 -- same error
                error = _failed(error_for_status(status, endpoint), attempt, status)
                if attempt > policy.max_retries or status not in RETRYABLE_STATUSES:
                    raise error
                delay = retry_after_seconds(response.headers.get("retry-after"))
            if delay is None:
                delay = policy.backoff(attempt, resilience.rng)
            if time.monotonic() + delay >= deadline:
                raise error  # waiting would outlive the operation
            resilience.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(
        self,
        url: str,
        endpoint: str,
        params: Params | None,
        headers: dict[str, str],
        deadline: float,
    ) -> httpx.Response:
        """One measured, traced attempt; `traceparent` goes upstream with it."""
        started = time.perf_counter()
        status = "error"
        with self.tracing.span("oms.request", "CLIENT", **{"http.route": endpoint}) as span:
            self.tracing.inject(headers)
            try:
                response = await self._send(url, params, headers, deadline)
                status = str(response.status_code)
                if span is not None:
                    span.set_attribute("http.response.status_code", response.status_code)
                    if response.status_code >= 500:
                        self.tracing.fail(span, status)
                return response
            except httpx.TimeoutException:
                status = "timeout"
                raise
            except httpx.TransportError:
                status = "transport_error"
                raise
            finally:
                self.metrics.upstream_requests.labels(endpoint, status).inc()
                self.metrics.upstream_seconds.labels(endpoint).observe(
                    time.perf_counter() - started
                )

    async def _send(
        self, url: str, params: Params | None, headers: dict[str, str], deadline: float
    ) -> httpx.Response:
        settings = self.settings
        slots = self.resilience.slots
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await slots.acquire()
        except TimeoutError:
            raise _NoSlot("no upstream slot before the deadline") from None
        try:
            budget = min(settings.upstream_total_timeout, deadline - time.monotonic())
            timeout = httpx.Timeout(
                min(settings.upstream_read_timeout, budget),
                connect=min(settings.upstream_connect_timeout, budget),
            )
            try:
                async with asyncio.timeout(budget):
                    request = httpx.Request(
                        "GET",
                        self._base + url,
                        params=params,
                        headers={**self._headers, **headers},
                        extensions={"timeout": timeout.as_dict()},
                    )
                    return await self.http.send(request)
            except TimeoutError:
                raise httpx.ReadTimeout("the attempt outlived its total timeout") from None
        finally:
            slots.release()


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
        body = await self._get(path, path, params)
        try:
            result = _parse_page(body, nested=kind == "full", endpoint=path)
        except UpstreamBadResponse as error:
            raise self._bad(path, error)  # noqa: B904 -- the same exception, now logged
        expected = max(0, min(limit, result.count - (page - 1) * limit))
        if len(result.results) != expected:
            # The server ignored our limit (it may cap pages below upstream_max_limit); slicing
            # such a page would silently drop or repeat items.
            raise self._bad(
                path,
                UpstreamBadResponse(
                    f"The OMS API sent {len(result.results)} items for a page of {limit} from "
                    f"{path}; is upstream_max_limit above what the server serves?"
                ),
            )
        return result

    async def detail(self, item_id: int) -> Item:
        body = await self._get(DETAIL_PATH.format(id=item_id), DETAIL_PATH, None)
        if not _is_item(body, nested=True) or body["id"] != item_id:
            error = UpstreamBadResponse(f"The OMS API sent a mis-shaped item for {DETAIL_PATH}.")
            raise self._bad(DETAIL_PATH, error)
        item: Item = body
        return item

    async def _get(self, url: str, endpoint: str, params: Params | None) -> Any:
        if not self.authorization:
            raise MissingCredentials()
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        headers = {"Authorization": self.authorization}
        if self.request_id:
            headers["X-Request-ID"] = self.request_id
        if self._in_flight == 0:
            self._busy_since = time.perf_counter()
        self._in_flight += 1
        try:
            return await self.client.get_json(url, endpoint, params, headers, self.deadline)
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


def _decode(response: httpx.Response, endpoint: str) -> Any:
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type.split(";", 1)[0]:
        raise UpstreamBadResponse(f"The OMS API sent {endpoint} as non-JSON.")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBadResponse(f"The OMS API sent undecodable JSON for {endpoint}.") from exc


def _is_item(value: Any, *, nested: bool) -> bool:
    if type(value) is not dict or type(value.get("id")) is not int:
        return False
    if nested:
        return type(value.get("state")) is dict and type(value.get("product")) is dict
    return type(value.get("state")) is int and type(value.get("product")) is int


def _parse_page(body: Any, *, nested: bool, endpoint: str) -> Page:
    if (
        type(body) is not dict
        or type(body.get("count")) is not int
        or type(body.get("results")) is not list
        or not all(_is_item(item, nested=nested) for item in body["results"])
    ):
        raise UpstreamBadResponse(f"The OMS API sent a mis-shaped page for {endpoint}.")
    results: list[Item] = body["results"]
    if not nested:
        # list-simple names state and product by id; give them the object shape of the schema.
        for item in results:
            item["state"] = {"id": item["state"]}
            item["product"] = {"id": item["product"]}
    return Page(count=body["count"], results=results)
