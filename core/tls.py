"""TLS for the project's own clients of the front: trust the system's CAs and the local one."""

from __future__ import annotations

import ssl

from core.settings import Settings


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client context that also trusts ``settings.ca_cert_path`` when it exists."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if settings.ca_cert_path.is_file():
        context.load_verify_locations(cafile=settings.ca_cert_path)
    return context
