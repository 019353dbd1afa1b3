"""The aiohttp transport (`pip install 'oms-gateway[aiohttp]'`, `OMS_UPSTREAM_CLIENT=aiohttp`)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from gateway.errors import ConnectionFailed, TransportFailure, TransportTimeout
from gateway.settings import Settings
from gateway.upstream.transports import ACCEPT_ENCODING, BoundedBody, ClosesOnExit, Params, Reply


class AiohttpTransport(ClosesOnExit):
    """One `aiohttp.ClientSession` for the app's lifetime; build it inside the running loop."""

    def __init__(self, settings: Settings) -> None:
        self._base = settings.upstream_url.rstrip("/")
        self._limit = settings.upstream_max_body_bytes
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=settings.upstream_max_connections, limit_per_host=0
            ),
            headers={"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING},
            # Every client's calls share this session: a cookie the upstream (or a sticky load
            # balancer) sets for one token must never ride along on another's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies are decoded by BoundedBody, which caps the decoded size step by step.
            auto_decompress=False,
            trust_env=False,
            raise_for_status=False,
        )
        # aiohttp repeats an idempotent request once by itself when the connection drops; the
        # retries belong to OmsClient, which counts them against the deadline and the breaker
        # (tests/gateway/upstream/test_faults.py counts the connections). No public switch
        # exists; its own test client turns this attribute off the same way.
        self.session._retry_connection = False
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    async def get(
        self,
        path: str,
        params: Params | None,
        headers: Mapping[str, str],
        *,
        connect_timeout: float,
        read_timeout: float,
    ) -> Reply:
        try:
            response = await self.session.get(
                self._base + path,
                params=params,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(connect_timeout, read_timeout),
            )
            try:
                body = BoundedBody(
                    response.headers.get("content-encoding"),
                    self._limit,
                    response.content_length,
                )
                content = response.content
                while chunk := await content.readany():  # iter_any() without its iterator
                    body.feed(chunk)
                    if content.at_eof():
                        # The body is complete (a cut or broken one never reads as at EOF):
                        # no last call only to be handed b"" (a coroutine per attempt).
                        break
                reply = Reply(response.status, response.headers, body.finish())
            except BaseException:
                response.close()  # drop the connection: its body was not read to the end
                raise
            response.release()
            return reply
        except aiohttp.ClientError as exc:
            raise _failure(exc) from exc
        except TimeoutError as exc:  # aiohttp's own: the caller's deadline cancels instead
            raise TransportTimeout(type(exc).__name__, retryable=False) from exc

    def _timeout(self, connect: float, read: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            if len(self._timeouts) > 64:  # budgets near a deadline vary; keep the common ones
                self._timeouts.clear()
            timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read)
            self._timeouts[(connect, read)] = timeout
        return timeout

    async def aclose(self) -> None:
        await self.session.close()


def _failure(exc: aiohttp.ClientError) -> TransportFailure:
    """aiohttp's exceptions mapped as the httpx transport maps httpx's (see its `_RETRYABLE`)."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransportTimeout(name, retryable=True)  # nothing was sent
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TransportTimeout(name, retryable=False)  # a read: repeating doubles the wait
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        # Refused, reset, closed without an answer, or cut short mid-body.
        return ConnectionFailed(name, retryable=True)
    if isinstance(exc, aiohttp.ClientResponseError):
        return ConnectionFailed(name, retryable=True)  # not HTTP (httpx: RemoteProtocolError)
    return ConnectionFailed(name, retryable=False)  # e.g. an invalid URL
