"""The CPU one upstream call costs with the gateway's own transport, outside the gateway.

`bench/run.py` runs this next to its load runs: the gap between the gateway's CPU per operation
and this floor is what the gateway itself adds. Sequential calls, bounded by `--calls`. The
transport is the one `OMS_UPSTREAM_CLIENT` names (httpx unless set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import orjson

from gateway.settings import Settings
from gateway.upstream.transports import open_transport


async def floor(base_url: str, path: str, token: str, calls: int) -> float:
    """Milliseconds of this process's CPU per GET of `path`, body read and JSON-decoded."""
    client = os.environ.get("OMS_UPSTREAM_CLIENT", Settings().upstream_client)
    settings = Settings(upstream_url=base_url, upstream_client=client)
    async with open_transport(settings) as transport:
        # Sent the way gateway/upstream/client.py sends its requests.
        headers = {"Authorization": f"Token {token}"}

        async def once() -> None:
            reply = await transport.get(
                path,
                None,
                headers,
                connect_timeout=settings.upstream_connect_timeout,
                read_timeout=settings.upstream_read_timeout,
            )
            if reply.status != 200:
                raise RuntimeError(f"{path} answered {reply.status}")
            orjson.loads(reply.body)

        for _ in range(min(50, calls)):
            await once()
        started = time.process_time()
        for _ in range(calls):
            await once()
        return (time.process_time() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    if not args.base_url.startswith("http://127.0.0.1:"):
        raise SystemExit("client_floor.py only calls 127.0.0.1")
    try:
        import uvloop  # what uvicorn runs the gateway on

        run = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    cpu_ms = run(floor(args.base_url, args.path, args.token, max(1, min(args.calls, 20_000))))
    print(json.dumps({"cpu_ms": cpu_ms}))


if __name__ == "__main__":
    main()
