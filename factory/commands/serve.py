"""`image-factory serve`: the web service under gunicorn.

Embedded default (no `IMAGE_FACTORY_BROKER_URL`): a first start prepares the data directory,
then gunicorn and one build worker on the embedded broker run side by side
(`factory.commands.supervise`). Scaled mode (a Redis broker URL): only the web processes;
builds run on `image-factory worker` processes elsewhere.

The only `Server` header is ours (`Image Factory <version>`): gunicorn's own is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click
import gunicorn.http.wsgi
from flask import Flask
from gunicorn.app.base import BaseApplication

from factory.app import SERVER_HEADER, create_app
from factory.commands.startup import check_scaled_start
from factory.commands.supervise import Supervisor
from factory.commands.worker import worker_name
from workers.app import expire_results, make_celery, run_worker
from workers.assembly.run import ToolError, require_tools
from workers.bootstrap import prepare_embedded_default
from workers.build import BUILD_TOOLS
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

    def load(self) -> Callable[..., Iterable[bytes]]:
        return _without_app_server_header(self._app)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _without_app_server_header(app: WsgiApp) -> WsgiApp:
    """gunicorn writes its own `Server` line (set to ours below); drop the app's copy so a
    response carries exactly one."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return wrapped


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
    if settings.is_scaled:
        check_scaled_start(settings, store)
    else:
        _prepare_embedded_default(settings, store)
    app = create_app(settings, store=store)
    gunicorn.http.wsgi.SERVER = SERVER_HEADER
    options = {
        "bind": f"{host}:{port}",
        "workers": web_workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": settings.build_wait + 60,
        "accesslog": "-",
        # gunicorn's control socket defaults to one path per user: two servers would share it.
        "control_socket_disable": True,
    }
    click.echo(f"serving on http://{host}:{port}", err=True)
    if settings.broker_url:
        _Gunicorn(app, options).run()
        return
    click.echo("embedded default: starting a build worker alongside", err=True)
    try:
        require_tools(BUILD_TOOLS, reason="building images")
    except ToolError as exc:
        raise click.ClickException(str(exc)) from exc

    def build_worker() -> None:
        status = run_worker(
            make_celery(settings, worker=True), settings.worker_concurrency, "INFO", worker_name()
        )
        raise SystemExit(status)

    states = make_celery(settings)
    status = Supervisor(
        lambda: _Gunicorn(app, options).run(), build_worker, lambda: expire_results(states)
    ).run()
    raise SystemExit(status)
