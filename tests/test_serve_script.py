"""`scripts/serve` run as root serves and builds as the unprivileged `image-factory` user.

A real run: the script (its apt and venv steps find everything in place), gunicorn, the build
worker and a real build whose tools run in the bubblewrap sandbox as that user. The data
directory is outside pytest's root-only temp directory, where the user can reach it."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factory.live import _answers
from tests.services import ServerProcess, free_ports, started
from tests.workers.assets import stock_store
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SERVICE_USER = "image-factory"
SCHEMATIC = b"customization:\n  systemExtensions:\n    officialExtensions: [factory/hello]\n"


def _uids(pid: int) -> tuple[int, int]:
    """(real, effective) uid of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective = line.split()[1:3]
            return int(real), int(effective)
    raise AssertionError(f"no Uid line for {pid}")


def _tree(root: int) -> set[int]:
    """`root` and every process below it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    return tree


@pytest.fixture
def data_root(reference_release: tuple[LocalStore, Release]) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="serve-script-", dir="/var/tmp"))
    root.chmod(0o755)
    stock_store(reference_release, root)  # as root: the script must hand it to its user
    yield root
    shutil.rmtree(root)


def test_serve_as_root_runs_everything_as_an_unprivileged_user(data_root: Path) -> None:
    assert os.geteuid() == 0, "scripts/serve drops root: this test runs it as root"
    data_dir = data_root / "data"
    ports: list[int] = []

    def start(attempt: int) -> ServerProcess:
        ports[:] = free_ports(1)
        env = [
            f"IMAGE_FACTORY_DATA_DIR={data_dir}",
            f"IMAGE_FACTORY_EXTERNAL_URL=http://127.0.0.1:{ports[0]}",
        ]
        argv = [
            "env",
            *env,
            str(REPO / "scripts" / "serve"),
            "--port",
            str(ports[0]),
            "--workers",
            "1",
        ]
        return ServerProcess("scripts/serve", argv, data_root / "serve.log", REPO)

    with started(start, lambda: _answers(f"http://127.0.0.1:{ports[0]}/healthz")) as server:
        try:
            url = f"http://127.0.0.1:{ports[0]}"
            request = urllib.request.Request(f"{url}/schematics", data=SCHEMATIC, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                sid = json.load(response)["id"]
            # A real build: its tools run sandboxed, as the service user.
            with urllib.request.urlopen(
                f"{url}/image/{sid}/v1.0.0/initramfs-amd64.xz", timeout=900
            ) as response:
                assert response.status == 200
                assert len(response.read()) > 0
            with urllib.request.urlopen(f"{url}/readyz", timeout=30) as response:
                assert response.read() == b"ready\n"  # sandboxed: no warning
            service = pwd.getpwnam(SERVICE_USER).pw_uid
            assert service != 0
            tree = _tree(server.proc.pid)
            assert len(tree) >= 3  # supervisor, gunicorn (+ its worker), build worker
            assert {_uids(pid) for pid in tree} == {(service, service)}
            assert data_dir.stat().st_uid == service
            assert (data_dir / "store").stat().st_uid == service
            assert "serving as user image-factory" in server.log_path.read_text()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
