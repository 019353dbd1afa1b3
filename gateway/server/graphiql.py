"""GraphiQL served offline by the gateway: pinned npm builds vendored in static/, a strict CSP."""

# Asset choice: the npm builds of graphiql 4.1.2 (its UMD bundle, the last major that ships one),
# @graphiql/plugin-explorer 4.0.6, react and react-dom 18.3.1 (the last React with UMD builds),
# copied byte for byte with their licences by scripts/fetch_graphiql.py into static/graphiql/vendor
# (MANIFEST.json lists versions and sha256) and committed, so a machine with only Python serves
# GraphiQL with no CDN and no Node. No well-kept PyPI package carries the build (Strawberry's own
# page loads it from unpkg), and graphiql 5 is ESM + Monaco, which would need a bundler.

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from gateway.settings import DEMO_TOKEN, Settings

EXAMPLE_QUERY = """\
# Order items from the Akinon OMS.
# Run it with Ctrl+Enter.
# nested: the full list endpoint;
# slim: only ids, so list-simple.
query Example {
  nested: orderItems(first: 5) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      orderId
      price
      priceCurrency
      state { id enumValue name(locale: "tr-tr") }
      product { id name sku images { url } }
    }
  }
  slim: orderItems(first: 5) {
    nodes { id netAmount state { id } product { id } }
  }
}
"""

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
#: Where the assets are mounted. The page (at /graphql) links them relatively, so the gateway
#: also works under a path prefix.
ASSETS_PATH = "/graphiql"

STYLESHEETS = ("vendor/graphiql/graphiql.min.css", "vendor/plugin-explorer/style.css", "page.css")
SCRIPTS = (
    "vendor/react/react.production.min.js",
    "vendor/react-dom/react-dom.production.min.js",
    "vendor/graphiql/graphiql.min.js",
    "vendor/plugin-explorer/index.umd.js",
    "init.js",
)
FAVICON = "favicon.svg"

# Only the gateway's own origin. data: is allowed for images and fonts because graphiql.min.css
# embeds its fonts and a few icons as data: URLs (nothing can execute from them). Styles need no
# 'unsafe-inline': React and CodeMirror set styles through the CSSOM, which CSP does not govern;
# the browser test fails on any CSP violation, so a GraphiQL upgrade that needs more shows up.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The page may carry the demo token and changes with settings: never cache it.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def fingerprint(path: str) -> str | None:
    """A short content hash of an asset (relative to STATIC_DIR), None when there is no file."""
    file = STATIC_DIR / path
    if not file.is_file():
        return None
    return hashlib.sha256(file.read_bytes()).hexdigest()[:16]


def asset_url(path: str) -> str:
    """The page-relative URL of an asset; its fingerprint makes it safe to cache for a year."""
    return f"{ASSETS_PATH.lstrip('/')}/{path}?v={fingerprint(path)}"


def json_for_script(value: Any) -> str:
    # Escaped so that no value can close the <script> element or open a comment in it.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_config(settings: Settings) -> dict[str, Any]:
    """What init.js needs: the first operation, the demo's headers, the persistence choice."""
    headers = ""
    if settings.env == "demo":
        headers = json.dumps({"Authorization": f"Token {DEMO_TOKEN}"}, indent=2)
    return {
        "query": EXAMPLE_QUERY,
        "headers": headers,
        # Off by default (`graphiql_persist_headers`): a token typed into GraphiQL stays out
        # of localStorage.
        "shouldPersistHeaders": settings.graphiql_persist_headers,
        "storageNamespace": "oms-gateway",
    }


def graphiql_html(settings: Settings) -> str:
    """The page: assets from the gateway itself and the config as a JSON data block."""
    styles = "\n".join(f'    <link rel="stylesheet" href="{asset_url(p)}">' for p in STYLESHEETS)
    scripts = "\n".join(f'    <script src="{asset_url(p)}" defer></script>' for p in SCRIPTS)
    config = json_for_script(graphiql_config(settings))
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>GraphiQL · OMS GraphQL gateway</title>
    <link rel="icon" type="image/svg+xml" href="{asset_url(FAVICON)}">
{styles}
    <script type="application/json" id="graphiql-config">{config}</script>
{scripts}
  </head>
  <body>
    <div id="graphiql"><p class="graphiql-loading">Loading GraphiQL…</p></div>
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
"""


def graphiql_response(settings: Settings) -> Response:
    """The GraphiQL page a browser gets at /graphql."""
    return HTMLResponse(graphiql_html(settings), headers=_PAGE_HEADERS)


class AssetFiles(StaticFiles):
    """GraphiQL's files; a URL carrying the file's current fingerprint is cached for a year."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            wanted = QueryParams(scope.get("query_string", b"")).get("v")
            current = fingerprint(Path(path).as_posix())
            # An unversioned or stale URL must be revalidated, or an upgrade would not show.
            fresh = wanted is not None and wanted == current
            response.headers["Cache-Control"] = _IMMUTABLE if fresh else "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def graphiql_routes() -> list[BaseRoute]:
    """Routes for GraphiQL's own assets (scripts, styles, licences), under ASSETS_PATH."""
    return [Mount(ASSETS_PATH, AssetFiles(directory=STATIC_DIR), name="graphiql")]
