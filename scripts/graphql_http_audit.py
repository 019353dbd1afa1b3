"""Run the graphql-http audit (the GraphQL-over-HTTP conformance suite) against the gateway.

Needs Node 18+ and the npm packages once: `npm install --prefix .audit graphql-http graphql`.
Starts the fake OMS and a gateway on 127.0.0.1, prints every audit that is not `ok` and the score.
Usage: .venv/bin/python scripts/graphql_http_audit.py [--prefix .audit]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.fake_upstream.app import DEMO_TOKEN, FakeOms, create_fake_app  # noqa: E402
from gateway.server.app import create_app  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from tests.conftest import serve  # noqa: E402

AUDIT = """
import { auditServer } from 'graphql-http';
const auth = { authorization: 'Token %s' };
const fetchFn = (input, init) =>
  fetch(input, { ...init, headers: { ...(init?.headers || {}), ...auth } });
const results = await auditServer({ url: process.argv[2], fetchFn });
const ok = results.filter((r) => r.status === 'ok').length;
for (const r of results) if (r.status !== 'ok') console.log(r.status, r.name, '-', r.reason);
console.log(`graphql-http audit: ${ok}/${results.length}`);
process.exit(ok === results.length ? 0 : 1);
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=".audit", help="where graphql-http is installed")
    prefix = Path(parser.parse_args().prefix).resolve()
    script = prefix / "audit.mjs"
    script.write_text(AUDIT % DEMO_TOKEN)
    with (
        serve(create_fake_app(FakeOms())) as upstream,
        serve(create_app(Settings(upstream_url=upstream))) as gateway,
    ):
        done = subprocess.run(["node", str(script), f"{gateway}/graphql"], timeout=120)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
