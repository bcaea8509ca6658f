"""The API serves the web page at /app/: the HTML, and every JS module it loads as JavaScript."""

from __future__ import annotations

import re

import httpx
import pytest

from api.main import STATIC_DIR
from tests.integration.api.conftest import api_settings, api_url, client

__all__ = ["api_settings", "api_url", "client"]  # fixtures used below

pytestmark = pytest.mark.integration

# Relative imports of the page's modules: `import ... from "./x.js"` and `from "../vendor/y.js"`.
_IMPORT = re.compile(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""")


def _modules() -> list[str]:
    """Every module file under /app/ that the page's JS imports, as paths below /app/."""
    found = {"js/app.js"}
    for path in (STATIC_DIR / "js").glob("*.js"):
        for target in _IMPORT.findall(path.read_text()):
            found.add(str((STATIC_DIR / "js" / target).resolve().relative_to(STATIC_DIR)))
    return sorted(found)


async def test_the_page_and_every_module_it_imports_are_served_without_login(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'src="js/app.js"' in page.text
    modules = _modules()
    assert "vendor/lightweight-charts.module.js" in modules
    for module in modules:
        response = await client.get(f"/app/{module}")
        assert response.status_code == 200, module
        # Browsers run a module script only when it comes with a JavaScript MIME type.
        assert response.headers["content-type"].startswith("text/javascript"), module


async def test_a_missing_page_file_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/js/no-such-module.js")
    assert response.status_code == 404
