"""The default transport: one pooled `httpx.AsyncClient`, bodies streamed through `BoundedBody`."""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping

import httpx

from gateway.errors import ConnectionFailed, TransportFailure, TransportTimeout
from gateway.settings import Settings
from gateway.upstream.transports import ACCEPT_ENCODING, BoundedBody, ClosesOnExit, Params, Reply

# Failures where the request cannot have been processed upstream, so a GET is safe to repeat;
# a read timeout is not among them: repeating it would double the wait.
_RETRYABLE = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
    httpx.WriteError, httpx.PoolTimeout,
)  # fmt: skip


class HttpxTransport(ClosesOnExit):
    """Requests are built here rather than by `client.get`: merging the client's defaults per
    call was about a sixth of an upstream call's CPU (bench/, profile)."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        # `transport`: tests inject httpx.MockTransport for answers the fake OMS cannot send.
        self.client = httpx.AsyncClient(
            transport=transport,
            base_url=settings.upstream_url,
            timeout=httpx.Timeout(
                settings.upstream_read_timeout, connect=settings.upstream_connect_timeout
            ),
            limits=httpx.Limits(
                max_connections=settings.upstream_max_connections,
                max_keepalive_connections=settings.upstream_max_connections,
            ),
            headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
            # Every client's calls share this client: a cookie the upstream (or a sticky load
            # balancer) sets for one token must never ride along on another's request.
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._base = str(self.client.base_url).rstrip("/")
        self._headers = dict(self.client.headers)
        self._limit = settings.upstream_max_body_bytes

    async def get(
        self,
        path: str,
        params: Params | None,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Reply:
        timeout = {"connect": connect_timeout, "read": read_timeout, "write": read_timeout}
        request = httpx.Request(
            "GET",
            self._base + path,
            params=params,
            headers={**self._headers, **headers},
            extensions={"timeout": {**timeout, "pool": read_timeout}},
        )
        try:
            response = await self.client.send(request, stream=True)
            try:
                return Reply(response.status_code, response.headers, await self._read(response))
            finally:
                # Closing a response that was not read to its end drops its connection.
                await response.aclose()
        except httpx.TransportError as exc:
            raise _failure(exc) from exc

    async def _read(self, response: httpx.Response) -> bytes:
        headers = response.headers
        length = headers.get("content-length")
        body = BoundedBody(
            headers.get("content-encoding"),
            self._limit,
            int(length) if length is not None and length.isdigit() else None,
        )
        async for chunk in response.aiter_raw():
            body.feed(chunk)
        return body.finish()

    async def aclose(self) -> None:
        await self.client.aclose()


def _failure(exc: httpx.TransportError) -> TransportFailure:
    retryable = isinstance(exc, _RETRYABLE)
    if isinstance(exc, httpx.TimeoutException):
        return TransportTimeout(type(exc).__name__, retryable=retryable)
    return ConnectionFailed(type(exc).__name__, retryable=retryable)
