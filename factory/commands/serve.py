"""`image-factory serve`: the web service under gunicorn.

Embedded default (no `IMAGE_FACTORY_BROKER_URL`): a first start prepares the data directory,
then gunicorn and one build worker on the embedded broker run side by side
(`factory.commands.supervise`). Scaled mode (a Redis broker URL): only the web processes;
builds run on `image-factory worker` processes elsewhere.

Serving model: gunicorn's gevent worker. Each connection is a greenlet, not a thread, so
idle or slowly-sending clients, event streams and downloads waiting for their build cost a
few kilobytes each instead of one of a handful of threads (`--connections` per web process).
gevent patches the standard library when a web process starts, after gunicorn forked it, so
the app, its store and its clients are built there (`_Gunicorn.load`), never in the master:
a lock or socket made before the patch would block every greenlet of the process. A client
that neither sends nor takes a byte for `CLIENT_IDLE_SECONDS` is disconnected.

The only `Server` header is ours (`Image Factory <version>`): gunicorn's own is replaced, and
so are its HTML error pages (`write_plain_error`).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import click
import gevent.socket
import gunicorn.http.wsgi
import gunicorn.util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.ggevent import GeventWorker

from factory.app import SERVER_HEADER, create_app
from factory.commands.startup import check_scaled_start
from factory.commands.supervise import Supervisor
from factory.commands.worker import warn_if_unsandboxed, worker_name
from factory.verified_stamps import GuardedFile
from workers.assembly.run import require_tools
from workers.backends import Backend, choose_backend
from workers.bootstrap import prepare_embedded_default
from workers.dispatch.celery_app import keep_house, make_celery, run_worker
from workers.dispatch.celery_tasks import register
from workers.errors import FactoryError, ToolError
from workers.pipeline.workdirs import remove_dead_workdirs, work_root
from workers.planning.asset_kinds import BUILD_TOOLS
from workers.settings import Settings
from workers.store import Store, make_store

# Longest a connection may go without receiving or sending a byte: a request head or body
# that stalls, or a download nobody reads. Event streams send a keep-alive well within it.
CLIENT_IDLE_SECONDS = 120.0


SENDFILE_CHUNK = 1 << 20
KEEPALIVE_SECONDS = 10


class _ZeroCopySocket(gevent.socket.socket):  # type: ignore[misc]
    """A client socket whose `sendfile` is the kernel's (`os.sendfile`), waiting for the
    socket cooperatively whenever it is full: gevent's own copies the file through Python."""

    __slots__ = ()  # the layout of gevent's socket, so an accepted one can become this

    def sendfile(self, file: BinaryIO, offset: int = 0, count: int | None = None) -> int:
        remaining = os.fstat(file.fileno()).st_size - offset if count is None else count
        if not isinstance(file, GuardedFile):
            return self._send_file_bytes(file, offset, remaining)
        # Sent under a verified stamp (factory.verified_stamps): the last chunk is read and
        # the stamp checked before it goes out; a change raises and cuts the connection.
        held = min(remaining, SENDFILE_CHUNK)
        sent = self._send_file_bytes(file, offset, remaining - held)
        if sent == remaining - held and held:
            last = file.read_last(offset + sent, held)
            self.sendall(last)
            sent += len(last)
        return sent

    def _send_file_bytes(self, file: BinaryIO | GuardedFile, offset: int, remaining: int) -> int:
        out, source = self.fileno(), file.fileno()
        sent = 0
        while remaining > 0:
            try:
                done = os.sendfile(out, source, offset + sent, min(remaining, SENDFILE_CHUNK))
            except BlockingIOError:
                gevent.socket.wait_write(
                    out, timeout=self.gettimeout(), timeout_exc=TimeoutError("timed out")
                )
                continue
            if done == 0:
                break  # the file is shorter than it was: the client gets a short body
            sent += done
            remaining -= done
        return sent


class IdleLimitedGeventWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with a timeout on every read and write of a client socket,
    and zero-copy file responses."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        client.__class__ = _ZeroCopySocket  # same layout, another sendfile
        client.settimeout(CLIENT_IDLE_SECONDS)
        super().handle(listener, client, addr)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Runs the Flask app under gunicorn's process manager, built in each web process."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Iterable[bytes]]:
        return _without_app_server_header(create_app(self._settings))


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


def write_plain_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own answers (414 URI too long, 431, a malformed request line) in plain text
    like every error of the app, instead of gunicorn's HTML page."""
    body = (f"{reason}: {mesg}" if mesg else reason).replace("\n", " ") + "\n"
    data = body.encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
        f"Server: {SERVER_HEADER}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + data)


def _prepare_embedded_default(settings: Settings, store: Store) -> None:
    """A fresh data directory gets the reference release (and first-start steps) first."""
    try:
        prepare_embedded_default(
            settings, store, lambda message: click.echo(f"first start: {message}", err=True)
        )
    except FactoryError as exc:
        raise click.ClickException(f"cannot prepare the embedded default: {exc}") from exc


def _check_scaled_start_apart(settings: Settings, backend: Backend) -> None:
    """`check_scaled_start` in a child process. It needs the S3 client, and importing
    botocore captures the standard `ssl` module: a gunicorn master holding that import would
    hand it to every web process, where gevent patches `ssl` only after the fork (the S3
    client then fails with RecursionError and no web process boots)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # The web side holds no private key: it checks the public halves it serves.
            check_scaled_start(settings, make_store(backend), signs=False)
            code = 0
        except click.ClickException as error:
            error.show()
        except Exception:  # noqa: BLE001 - the child must end here, saying why
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(1)


def port_mismatch(external_url: str, port: int) -> str:
    """Why links may not reach this server: an explicit external URL naming another port
    ("" when they agree, or when links follow each request because none is set)."""
    if not external_url:
        return ""
    parts = urlsplit(external_url)
    named = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if named == port:
        return ""
    return (
        f"IMAGE_FACTORY_EXTERNAL_URL is {external_url} but this server listens on port {port}: "
        "links point there, which is right only behind a proxy forwarding it here "
        "(leave it unset to take links from each request)"
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--workers", "web_workers", default=2, show_default=True, type=int, help="Web processes."
)
@click.option(
    "--connections",
    default=1000,
    show_default=True,
    type=int,
    help="Open connections per web process (each a greenlet).",
)
def serve(host: str, port: int, web_workers: int, connections: int) -> None:
    """Serve the HTTP API and web form (embedded default unless S3/Redis are configured)."""
    settings = Settings.from_env()
    warn_if_unsandboxed(settings)
    backend = choose_backend(settings)
    if backend.scaled:
        _check_scaled_start_apart(settings, backend)
    else:
        _prepare_embedded_default(settings, make_store(backend))
    gunicorn.http.wsgi.SERVER = SERVER_HEADER
    gunicorn.util.write_error = write_plain_error
    options = {
        "bind": f"{host}:{port}",
        "workers": web_workers,
        "worker_connections": connections,
        # An idle keep-alive connection costs a greenlet, not a thread: keep it longer than
        # gunicorn's 2 s (at 50 busy keep-alive clients the 2 s cut showed as a p99 of 2-3 s).
        "keepalive": KEEPALIVE_SECONDS,
        "worker_class": IdleLimitedGeventWorker,
        "timeout": settings.build_wait + 60,
        "accesslog": "-",
        # Forwarded headers are trusted only as IMAGE_FACTORY_TRUSTED_PROXIES says
        # (`factory.urls`), not by gunicorn for any local client.
        "secure_scheme_headers": {},
        "forwarded_allow_ips": "",
        # gunicorn's control socket defaults to one path per user: two servers would share it.
        "control_socket_disable": True,
    }
    click.echo(f"serving on http://{host}:{port}", err=True)
    warning = port_mismatch(settings.external_url, port)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if backend.redis_url:
        _Gunicorn(settings, options).run()
        return
    click.echo("embedded default: starting a build worker alongside", err=True)
    try:
        require_tools(BUILD_TOOLS, reason="building images")
    except ToolError as exc:
        raise click.ClickException(str(exc)) from exc

    def build_worker() -> None:
        remove_dead_workdirs(work_root(settings))
        status = run_worker(
            register(make_celery(settings, backend, worker=True)),
            settings.worker_concurrency,
            "INFO",
            worker_name(),
        )
        raise SystemExit(status)

    states = make_celery(settings, backend)
    status = Supervisor(
        lambda: _Gunicorn(settings, options).run(), build_worker, lambda: keep_house(states)
    ).run()
    raise SystemExit(status)
