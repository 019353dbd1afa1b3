"""GraphiQL in a real browser (Debian's chromium through Playwright) with the network cut off."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from gateway.fake_upstream.app import DEMO_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Playwright's own browser download does not work here; these flags let Debian's chromium run
# as root, headless, without talking to Google.
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Installed before any page script runs; init scripts are not subject to the page's CSP.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


EXAMPLE_FITS = """() => {
  const cm = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
  const info = cm.getScrollInfo();
  return info.width <= info.clientWidth;
}"""


def widths(page) -> tuple[float, float]:
    """The rendered widths of the operation editor and of the result pane."""
    return tuple(
        page.locator(selector).bounding_box()["width"]
        for selector in (".graphiql-editors", ".graphiql-response")
    )


def _sync_api() -> ModuleType:
    """Playwright's sync API; a skip (a failure under CI, which must run this) if it cannot run."""
    missing = []
    try:
        import playwright.sync_api as api
    except ImportError:
        api = None
        missing.append("the playwright package (pip install -e '.[dev]')")
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    if missing:
        reason = "the GraphiQL browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run it", pytrace=False)
        pytest.skip(reason)
    assert api is not None
    return api


def test_graphiql_runs_the_example_with_only_the_gateway_reachable(
    make_gateway, upstream, tmp_path
):
    api = _sync_api()
    expect = api.expect
    gw = make_gateway(env="demo", token=DEMO_TOKEN)
    aborted: list[str] = []
    problems: list[str] = []
    operations: list = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    with api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh profile: no stored tabs, no cache
            executable_path=str(CHROMIUM),
            args=LAUNCH_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            context.set_default_timeout(15_000)
            context.route("**/*", only_loopback)
            context.add_init_script(RECORD_CSP_VIOLATIONS)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            page.on(
                "request",
                lambda r: (
                    operations.append(r)
                    if r.method == "POST" and "Example" in (r.post_data or "")
                    else None
                ),
            )

            response = page.goto(f"{gw.url}/graphql")
            assert response is not None and response.status == 200
            assert "script-src 'self'" in response.headers["content-security-policy"]

            # What a developer sees first: the example, the demo's headers, and the explorer
            # closed, so the operation has the room (at 1440 px, without a horizontal scroll).
            expect(page.locator(".graphiql-query-editor")).to_contain_text("nested: orderItems")
            expect(page.locator(".graphiql-editor-tool")).to_contain_text(f"Token {DEMO_TOKEN}")
            expect(page.locator(".graphiql-explorer-root")).to_have_count(0)
            editor, response_pane = widths(page)
            assert editor >= response_pane and editor > 600, (editor, response_pane)
            assert page.evaluate(EXAMPLE_FITS), "the example operation is clipped"

            page.locator(".graphiql-execute-button").click()
            result = page.locator(".graphiql-response")
            # Item 1 of the fake OMS, fetched through the gateway (localisation is tested elsewhere).
            for text in ("Urun8", "599.99"):
                expect(result).to_contain_text(text)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "graphiql.png"))  # 1440 px wide

            # One click opens the explorer; the editor still gets at least the result's width,
            # also when the divider is dragged toward it.
            page.get_by_role("button", name="Show GraphiQL Explorer").click()
            expect(page.locator(".graphiql-explorer-root")).to_contain_text("orderItemsByIds")
            editor, response_pane = widths(page)
            assert editor >= response_pane, (editor, response_pane)
            bar = page.locator(".graphiql-response").locator("xpath=preceding-sibling::div[1]")
            box = bar.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + 4, box["y"] + 100)
            page.mouse.down()
            page.mouse.move(box["x"] - 300, box["y"] + 100, steps=10)
            page.mouse.up()
            editor, response_pane = widths(page)
            assert editor >= response_pane, (editor, response_pane)
            page.screenshot(path=str(ARTIFACTS / "graphiql-explorer.png"))
            page.get_by_role("button", name="Hide GraphiQL Explorer").click()

            assert operations, "GraphiQL sent no operation"
            assert operations[-1].all_headers().get("authorization") == f"Token {DEMO_TOKEN}"
            # The token was sent, and is nowhere in localStorage (history included).
            assert DEMO_TOKEN not in page.evaluate("JSON.stringify(localStorage)")

            # The docs pane shows the schema's descriptions.
            page.get_by_role("button", name="Show Documentation Explorer").click()
            docs = page.locator(".graphiql-doc-explorer")
            docs.get_by_text("Query", exact=True).first.click()
            expect(docs).to_contain_text("One order item by id, from the detail endpoint.")
            expect(docs).to_contain_text("A page of order items.")
            page.screenshot(path=str(ARTIFACTS / "graphiql-docs.png"))

            violations = page.evaluate("window.__cspViolations")
        finally:
            context.close()

    assert aborted == [], "the page needed requests beyond 127.0.0.1"
    assert violations == [], "the page broke its own Content-Security-Policy"
    assert problems == []
    assert upstream.calls() > 0
