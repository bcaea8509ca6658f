"""The interactive API documentation at ``/docs``: Swagger UI from files in this repository.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, which leaves the page blank without
internet; this one loads the copy vendored in ``api/static/vendor/`` (see its README).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_PATH = "/docs"
# Served by the app's static mount (api/main.py mounts api/static at /app).
VENDOR_URL = "/app/vendor"
# Swagger UI asks validator.swagger.io to check a schema unless told not to.
SWAGGER_UI_PARAMETERS = {"validatorUrl": None}


def install(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at ``/docs`` from the vendored files; create the app with docs_url=None."""

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """The Swagger UI page for this app's OpenAPI schema."""
        # Behind a proxy that mounts the app under a prefix, every URL carries the prefix.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} - docs",
            swagger_js_url=f"{root}{VENDOR_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{VENDOR_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{VENDOR_URL}/swagger-ui-favicon-32x32.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
