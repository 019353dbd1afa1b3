"""README command 1: `oms-gateway demo` serves real data from the embedded upstream."""

from __future__ import annotations

import json
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


def test_demo_prints_a_working_curl_command_and_stops_on_ctrl_c_with_one_line():
    import shlex
    import shutil
    import signal

    port = free_port()
    script = Path(sys.executable).parent / "oms-gateway"
    proc = subprocess.Popen(
        [script, "demo", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = []
        while not any(line.startswith("curl ") for line in lines):
            line = proc.stdout.readline()
            assert line, "the demo printed no curl command"
            lines.append(line.strip())
        curl = shlex.split(lines[-1])
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "demo did not start"
                time.sleep(0.1)
        if shutil.which("curl"):
            env = {"PATH": "/usr/bin:/bin", "NO_PROXY": "*"}
            answer = subprocess.run(curl, capture_output=True, text=True, timeout=30, env=env)
            body = answer.stdout
        else:  # replay the printed command's URL, header and body
            url, data = curl[2], curl[curl.index("-d") + 1]
            body = httpx.post(url, content=data, headers={"content-type": "application/json"}).text
        assert (
            json.loads(body)
            == {"data": {"orderItem": {"price": "599.99", "state": {"name": "Onaylandı"}}}}
            or json.loads(body)["data"]["orderItem"]["price"] == "599.99"
        )
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "Traceback" not in out + err
    assert err.strip().splitlines() == ["oms-gateway: stopped (interrupted)"]
