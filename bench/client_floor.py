"""The CPU one upstream call costs with the gateway's own httpx client, outside the gateway.

`bench/run.py` runs this next to its load runs: the gap between the gateway's CPU per operation
and this floor is what the gateway itself adds. Sequential calls, bounded by `--calls`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
import orjson

from gateway.settings import Settings
from gateway.upstream import open_http_client


async def floor(base_url: str, path: str, token: str, calls: int) -> float:
    """Milliseconds of this process's CPU per GET of `path`, body read and JSON-decoded."""
    async with open_http_client(Settings(upstream_url=base_url)) as client:
        # Built the way gateway/upstream.py builds its requests.
        url = str(client.base_url).rstrip("/") + path
        headers = {**client.headers, "Authorization": f"Token {token}"}

        async def once() -> None:
            response = await client.send(httpx.Request("GET", url, headers=headers))
            response.raise_for_status()
            orjson.loads(response.content)

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
