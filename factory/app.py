"""The Flask application factory."""

from __future__ import annotations

import uuid
from importlib.metadata import version

from flask import Flask, Response, request

from factory import (
    api,
    builds,
    catalog,
    extension_pages,
    extension_upload,
    images,
    meta,
    metrics,
    openapi,
    ops,
    pxe,
    registry,
    secureboot,
    talosctl,
    tenancy,
    ui,
)
from factory.auth import install_auth
from factory.cors import install_cors
from factory.engine import install_engine
from factory.errors import register_error_handlers
from factory.i18n import init_i18n
from factory.offered import install_version_policy
from factory.urls import trust_proxies
from workers.backends import choose_backend
from workers.settings import Settings
from workers.store import Store, make_store

SERVER_HEADER = f"Image Factory {version('image-factory')}"
REQUEST_ID_HEADER = "X-Request-ID"
BLUEPRINTS = (
    ops.bp,
    meta.bp,
    catalog.bp,
    api.bp,
    images.bp,
    pxe.bp,
    openapi.bp,
    ui.bp,
    extension_pages.bp,
    extension_upload.bp,
    secureboot.bp,
    registry.bp,
    builds.bp,
    metrics.bp,
    tenancy.bp,
    talosctl.bp,
)


def create_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    """Build the web app; settings default to the environment, the store to the settings."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max(
        settings.max_schematic_bytes, settings.max_extension_bytes
    )
    backend = choose_backend(settings)
    install_engine(app, settings, backend, store or make_store(backend))
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_error_handlers(app)
    install_cors(app, settings.allowed_origins)
    install_auth(app, settings.auth)
    install_version_policy(app, settings)
    init_i18n(app)
    trust_proxies(app, settings.trusted_proxies)

    @app.after_request
    def common_headers(response: Response) -> Response:
        response.headers["Server"] = SERVER_HEADER
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Echo a sane client id; never reflect control characters into headers.
        ok = 0 < len(incoming) <= 128 and incoming.isascii() and incoming.isprintable()
        response.headers[REQUEST_ID_HEADER] = incoming if ok else str(uuid.uuid4())
        return response

    return app
