"""/docs renders in headless Chromium from the API's own files: no request leaves the API."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Route, expect

from tests.browser.chromium import ARTIFACTS_DIR, headless_chromium, is_png

pytestmark = pytest.mark.integration

SCREENSHOT = ARTIFACTS_DIR / "docs.png"
RENDER_WAIT_MS = 30_000
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _operation_count(api_url: str) -> int:
    schema = httpx.get(f"{api_url}/openapi.json", timeout=30).json()
    return sum(
        1
        for operations in schema["paths"].values()
        for method in operations
        if method in HTTP_METHODS
    )


def test_the_docs_page_lists_every_operation_with_no_request_beyond_the_api(api_url: str) -> None:
    operations = _operation_count(api_url)
    outside: list[str] = []
    problems: list[str] = []

    def only_the_api(route: Route) -> None:
        # Anything else would be a CDN or a call home: refused, and remembered for the verdict.
        if route.request.url.startswith(f"{api_url}/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.route("**/*", only_the_api)
        page.goto(f"{api_url}/docs")
        blocks = page.locator(".opblock")
        expect(blocks).to_have_count(operations, timeout=RENDER_WAIT_MS)
        expect(page.locator(".opblock-summary-path", has_text="/v1/orders").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert outside == []
    assert problems == []
    assert is_png(SCREENSHOT)
