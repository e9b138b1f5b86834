"""`image-factory serve`: the web service under gunicorn."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from factory.app import create_app
from workers.assembly.run import ToolError
from workers.bootstrap import prepare_embedded_default
from workers.errors import FactoryError
from workers.settings import Settings
from workers.store import Store, make_store


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Runs an already-built Flask app under gunicorn's process manager."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def _prepare_embedded_default(settings: Settings, store: Store) -> None:
    """A fresh data directory gets the reference release (and first-start steps) first."""
    try:
        prepare_embedded_default(
            settings, store, lambda message: click.echo(f"first start: {message}", err=True)
        )
    except (FactoryError, ToolError) as exc:
        raise click.ClickException(f"cannot prepare the embedded default: {exc}") from exc


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers", "web_workers", default=2, show_default=True, type=int, help="Web processes."
)
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per web process.")
def serve(host: str, port: int, web_workers: int, threads: int) -> None:
    """Serve the HTTP API and web form (embedded default unless S3/Redis are configured)."""
    settings = Settings.from_env()
    store = make_store(settings)
    if not settings.uses_s3:
        _prepare_embedded_default(settings, store)
    app = create_app(settings, store=store)
    options = {
        "bind": f"{host}:{port}",
        "workers": web_workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": settings.build_wait + 60,
        "accesslog": "-",
    }
    click.echo(f"serving on http://{host}:{port}", err=True)
    _Gunicorn(app, options).run()
