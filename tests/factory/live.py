"""A real `image-factory serve` (gunicorn) for browser and network-boot tests.

`live_factory` (session fixture, one per test process) serves a data directory holding the
reference release and the bundled extensions on a free 127.0.0.1 port, with
`IMAGE_FACTORY_PXE_URL` set to `http://10.0.2.2:<port>`: QEMU's user network maps 10.0.2.2
to the host's loopback, so iPXE scripts point a guest back at this server. The server is
stopped after the session, also when tests fail; its log is `<root>/factory.log`.
`web_factory` is the same without those URLs, for the web form's browser tests; `two_arch_factory`
is `live_factory` with the arm64 reference release too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import ServerProcess, free_ports, started
from tests.workers.assets import share_deb_cache, stock_store
from workers.catalog.rpi_overlay import install_rpi_overlay
from workers.releases.stored import Release
from workers.store import LocalStore

QEMU_HOST = "10.0.2.2"  # the host as a guest on QEMU's user network sees it


@dataclass(frozen=True)
class LiveFactory:
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def guest_url(self) -> str:
        """The same server as a QEMU guest reaches it."""
        return f"http://{QEMU_HOST}:{self.port}"

    def create_schematic(self, body: bytes) -> str:
        """`POST /schematics`; the new schematic's ID."""
        request = urllib.request.Request(f"{self.url}/schematics", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            schematic_id: str = json.load(response)["id"]
        return schematic_id

    def get(self, path: str, timeout: float = 900) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
            data: bytes = response.read()
        return data


def _image_factory() -> str:
    return str(Path(sysconfig.get_path("scripts")) / "image-factory")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def _serving(
    reference_release: tuple[LocalStore, Release],
    root: Path,
    env_for_port: Callable[[int], list[str]],
) -> Iterator[LiveFactory]:
    # The first start's steps (installing the bundled extensions) are done here already.
    _, settings = stock_store(reference_release, root)
    log_path = root / "factory.log"
    ports: list[int] = []

    def start(attempt: int) -> ServerProcess:
        ports[:] = free_ports(1)
        port = ports[0]
        env = [f"IMAGE_FACTORY_DATA_DIR={settings.data_dir}", *env_for_port(port)]
        argv = ["env", *env, _image_factory(), "serve", "--port", str(port), "--workers", "1"]
        return ServerProcess("image-factory serve", argv, log_path, root)

    with started(start, lambda: _answers(f"http://127.0.0.1:{ports[0]}/healthz")) as server:
        yield LiveFactory(ports[0], settings.data_dir, log_path)
    # `serve` runs gunicorn and a build worker as children: none may outlive the tests.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGKILL)


def _guest_urls(port: int) -> list[str]:
    """PXE scripts point a QEMU guest back at the server on `port`."""
    return [
        f"IMAGE_FACTORY_EXTERNAL_URL=http://127.0.0.1:{port}",
        f"IMAGE_FACTORY_PXE_URL=http://{QEMU_HOST}:{port}",
    ]


@pytest.fixture(scope="session")
def live_factory(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveFactory]:
    root = tmp_path_factory.mktemp("live-factory")
    with _serving(reference_release, root, _guest_urls) as live:
        yield live


@pytest.fixture(scope="session")
def web_factory(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveFactory]:
    """As `live_factory`, but with no external or PXE URL configured: every link the
    service hands out is derived from the request (what `serve --port N` alone gives)."""
    with _serving(reference_release, tmp_path_factory.mktemp("web-factory"), lambda p: []) as web:
        yield web


@pytest.fixture(scope="session")
def two_arch_factory(
    reference_release: tuple[LocalStore, Release],
    reference_release_arm64: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveFactory]:
    """As `live_factory`, with the arm64 reference release beside the amd64 one (and the
    Raspberry Pi overlay)."""
    root = tmp_path_factory.mktemp("two-arch-factory")
    # The store `_serving` then adds amd64 to, with the first start's arm64 steps done.
    store, settings = stock_store(reference_release_arm64, root)
    share_deb_cache(settings)
    install_rpi_overlay(settings, store, reference_release_arm64[1], lambda message: None)
    with _serving(reference_release, root, _guest_urls) as live:
        yield live
