"""README command 1: `oms-gateway demo` serves real data from the embedded upstream."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def test_demo_command_serves_graphiql_and_data():
    port = free_port()
    script = Path(sys.executable).parent / "oms-gateway"
    proc = subprocess.Popen(
        [script, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(url, json={"query": "{ orderItem(id: 1) { price } }"})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "demo did not start"
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        # No Authorization header: the demo's service token is used.
        assert response.json() == {"data": {"orderItem": {"price": "599.99"}}}
        page = httpx.get(url, headers={"Accept": "text/html"})
        assert "nested: orderItems" in page.text
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/graphql" in output
    assert "query Example" in output
