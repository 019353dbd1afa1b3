"""GraphiQL's page without a browser: same-origin assets only, all served, a strict CSP."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from gateway.fake_upstream.app import DEMO_TOKEN
from gateway.server.graphiql import EXAMPLE_QUERY, STATIC_DIR, json_for_script

HTML = {"Accept": "text/html"}
IMMUTABLE = "public, max-age=31536000, immutable"


class _Page(HTMLParser):
    """The URLs a page makes the browser load, its inline scripts and its JSON config."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline_script_types: list[str] = []
        self.config: dict = {}
        self._in_config = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.assets.append(attrs[name])
        if tag == "script" and "src" not in attrs:
            self.inline_script_types.append(attrs.get("type") or "text/javascript")
            self._in_config = attrs.get("id") == "graphiql-config"

    def handle_data(self, data):
        if self._in_config:
            self.config = json.loads(data)
            self._in_config = False


def _page(gw, http):
    response = http.get(f"{gw.url}/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response, _Page(response.text)


def test_page_loads_only_assets_the_gateway_serves(gateway, http):
    response, page = _page(gateway, http)
    origin = urlsplit(gateway.url).netloc
    # No absolute or protocol-relative URL anywhere in the page, except to the gateway itself.
    for url in re.findall(r"(?:https?:)?//[^\s\"'<>]+", response.text):
        assert urlsplit(url).netloc == origin, url
    assert len(page.assets) >= 9  # 5 scripts, 3 stylesheets, the icon
    for ref in page.assets:
        url = urljoin(str(response.url), ref)
        assert urlsplit(url).netloc == origin, ref
        asset = http.get(url)
        assert asset.status_code == 200, ref
        assert asset.headers["cache-control"] == IMMUTABLE, ref
        assert asset.headers["x-content-type-options"] == "nosniff"
        kind = {"js": "javascript", "css": "text/css", "svg": "image/svg+xml"}
        assert kind[urlsplit(ref).path.rsplit(".", 1)[1]] in asset.headers["content-type"], ref
    # The only inline script is the JSON config, which a browser never executes.
    assert page.inline_script_types == ["application/json"]


def test_csp_allows_only_the_gateway_itself(gateway, http):
    response, _ = _page(gateway, http)
    policy = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, *sources = directive.split()
        policy[name] = sources
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    for sources in policy.values():
        assert set(sources) <= {"'self'", "'none'", "data:"}, sources
    assert response.headers["cache-control"] == "no-store"


def test_stylesheets_fetch_nothing_from_elsewhere(gateway, http):
    response, page = _page(gateway, http)
    for ref in (a for a in page.assets if ".css" in a):
        css = http.get(urljoin(str(response.url), ref)).text
        assert "@import" not in css, ref
        for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
            assert target.startswith("data:") or not re.match(r"^([a-z]+:|//)", target), target


def test_demo_prefills_the_token_and_never_persists_headers(make_gateway, http):
    _, demo = _page(make_gateway(env="demo", token=DEMO_TOKEN), http)
    assert json.loads(demo.config["headers"]) == {"Authorization": f"Token {DEMO_TOKEN}"}
    assert demo.config["query"] == EXAMPLE_QUERY
    assert demo.config["shouldPersistHeaders"] is False

    response, development = _page(make_gateway(token=DEMO_TOKEN), http)
    assert development.config["headers"] == ""
    assert development.config["shouldPersistHeaders"] is False
    assert DEMO_TOKEN not in response.text


def test_production_serves_no_page(make_gateway, http):
    response = http.get(f"{make_gateway(env='production').url}/graphql", headers=HTML)
    assert response.status_code == 404


def test_config_cannot_close_its_script_element():
    hostile = {"query": "</script><script>alert(1)</script><!--", "amp": "&"}
    text = json_for_script(hostile)
    assert not set("<>&") & set(text)
    assert json.loads(text) == hostile


def test_unversioned_or_stale_asset_urls_are_revalidated(gateway, http):
    assert http.get(f"{gateway.url}/graphiql/init.js").headers["cache-control"] == "no-cache"
    stale = http.get(f"{gateway.url}/graphiql/init.js?v=0000")
    assert stale.headers["cache-control"] == "no-cache"
    for path in ("/graphiql/", "/graphiql/vendor", "/graphiql/../graphiql.py", "/graphiql/nope.js"):
        assert http.get(f"{gateway.url}{path}").status_code == 404, path


def test_vendored_files_are_the_pinned_npm_builds():
    vendor = STATIC_DIR / "vendor"
    manifest = json.loads((vendor / "MANIFEST.json").read_text())
    listed = set()
    for folder, entry in manifest.items():
        for name, sha256 in entry["files"].items():
            data = (vendor / folder / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha256, f"{folder}/{name} was edited"
            listed.add(f"{folder}/{name}")
    present = {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()}
    assert present - {"MANIFEST.json"} == listed
    versions = {entry["package"]: entry["version"] for entry in manifest.values()}
    assert versions["graphiql"] == "4.1.2" and versions["react"] == "18.3.1"
    # Shipped in the wheel: keep it small.
    total = sum(p.stat().st_size for p in STATIC_DIR.rglob("*") if p.is_file())
    assert total < 2_500_000
