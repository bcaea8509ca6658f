"""Run the API server: ``python -m api``."""

from __future__ import annotations

import uvicorn

from api.main import create_app
from core.settings import get_settings


def main() -> None:
    """Serve the API on the configured host and port."""
    settings = get_settings()
    uvicorn.run(
        create_app(settings, own_process=True),
        host=settings.api_host,
        port=settings.api_port,
        access_log=settings.api_access_log,
        backlog=settings.api_backlog,
        # Behind the front: the client's address and scheme come from its X-Forwarded-* headers.
        proxy_headers=True,
        forwarded_allow_ips=settings.api_forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
