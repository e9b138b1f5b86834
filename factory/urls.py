"""Absolute URLs for the links the service hands out (pages, iPXE scripts, catalog refs).

`IMAGE_FACTORY_EXTERNAL_URL` wins when set. When it is empty the base is the one the current
request reached, so `serve --port 9000` hands out links to port 9000. `X-Forwarded-*` headers
count only behind `IMAGE_FACTORY_TRUSTED_PROXIES` proxies (`trust_proxies`); otherwise any
client could make the service write its own host into the links it returns to others.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from factory.engine import engine
from workers.catalog import registry_host


def trust_proxies(app: Flask, count: int) -> None:
    """Read the client's scheme, host, port and path prefix from the `X-Forwarded-*` headers
    the last `count` proxies set (0: ignore them)."""
    if count > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=count
        )


def external_url() -> str:
    """The service's base URL, without a trailing slash: configured, else this request's."""
    configured = engine().settings.external_url
    return (configured or request.host_url).rstrip("/")


def pxe_url() -> str:
    """The base URL iPXE scripts fetch from: the PXE URL, else `external_url()`."""
    return (engine().settings.effective_pxe_url or external_url()).rstrip("/")


def registry_reference_host() -> str:
    """host[:port] of `external_url()`: the registry part of image references."""
    return registry_host(external_url())
