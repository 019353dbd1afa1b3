"""The floor of the gateway's stack: a pure-ASGI proxy under uvicorn on the gateway's transport.

Each GET is forwarded, path, query and Authorization as they came, as one call through the
transport `OMS_UPSTREAM_CLIENT` names (gateway/transports: the same bounded body, timeouts and
pooling the gateway uses), and the upstream's status and bytes are sent back undecoded. No
GraphQL, no resilience, no logs or metrics: what is left is uvicorn plus the HTTP client, the
least any gateway on this stack can cost. `bench/floor.py` starts it the way the harness starts
the gateway (`serve --upstream-url URL --host H --port P [--token T]`).

With `--decode` it also parses the upstream JSON and serializes it again (orjson, as the gateway
does) before answering: the least a gateway that reads the data, rather than forwarding bytes,
can cost. `bench/floor.py` reports it as `proxy+json`.

With `--graphql` it is also sent the gateway's own request: the client POSTs the operation's
GraphQL JSON body (to the path of the upstream call it stands for). It reads that body, parses
it and finds its query text in a table, as any server that caches its plans must; makes the
GET; decodes the upstream JSON and answers it inside the GraphQL envelope (`{"data": {"orderItem":
item}}`, a page's results as `{"data": {"orderItems": {"nodes": [...]}}}`), keys unrenamed and
values unchecked. That is the least any GraphQL gateway answering the same request on this stack
can cost; the gateway's own logic is what it costs beyond it. `bench/server_cpu.py` reports it
as `proxy+graphql`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn

from gateway.settings import Settings
from gateway.upstream.transports import Transport, open_transport

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Proxy:
    def __init__(self, settings: Settings, *, decode: bool = False, graphql: bool = False) -> None:
        self.settings = settings
        self.decode = decode or graphql
        self.graphql = graphql
        self.plans: dict[str, str] = {}  # query text -> root field: the least a plan cache does
        self.transport: Transport | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["path"] == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
            return
        assert self.transport is not None
        root = await self._operation(receive) if self.graphql else None
        headers = {}
        for name, value in scope["headers"]:
            if name == b"authorization":
                headers["Authorization"] = value.decode("latin-1")
        query = scope["query_string"].decode("latin-1")
        path = scope["path"] + ("?" + query if query else "")
        reply = await self.transport.get(
            path,
            None,
            headers,
            connect_timeout=self.settings.upstream_connect_timeout,
            read_timeout=self.settings.upstream_read_timeout,
        )
        if root is not None:
            value = orjson.loads(reply.body)
            if root == "orderItems":
                value = {"nodes": value["results"]}
            body = orjson.dumps({"data": {root: value}})
        else:
            body = orjson.dumps(orjson.loads(reply.body)) if self.decode else reply.body
        await _answer(send, reply.status, body)

    async def _operation(self, receive: Receive) -> str:
        """The root field of the GraphQL request in the body, read whole."""
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        query = orjson.loads(b"".join(chunks))["query"]
        root = self.plans.get(query)
        if root is None:
            root = "orderItems" if "orderItems(" in query else "orderItem"
            if len(self.plans) < 100:  # bench/queries.py has a handful
                self.plans[query] = root
        return root

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.transport = open_transport(self.settings)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.transport is not None:
                    await self.transport.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--upstream-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", help="ignored: clients send their own Authorization")
    parser.add_argument("--decode", action="store_true", help="parse and re-serialize the JSON")
    parser.add_argument(
        "--graphql", action="store_true", help="read a GraphQL POST, answer the data envelope"
    )
    args, _ = parser.parse_known_args()
    if args.host != "127.0.0.1" or not args.upstream_url.startswith("http://127.0.0.1:"):
        raise SystemExit("proxy.py serves and calls 127.0.0.1 only")
    client = os.environ.get("OMS_UPSTREAM_CLIENT", Settings().upstream_client)
    settings = Settings(upstream_url=args.upstream_url, upstream_client=client)
    # The gateway's own uvicorn settings (gateway/cli.py): uvloop and httptools when present.
    uvicorn.run(
        Proxy(settings, decode=args.decode, graphql=args.graphql),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        # The gateway runs without uvicorn's ProxyHeadersMiddleware (nothing in it reads the
        # scope's client or scheme); the floor must not pay for a layer the gateway skips.
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
