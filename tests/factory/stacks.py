"""Whole deployments for the serving tests, started as real processes on loopback.

- `EmbeddedStack`: `image-factory serve` alone (its own build worker, the embedded broker, the
  local store in its data directory): no Redis, no S3.
- `ScaledStack`: `redis-server`, a SeaweedFS S3 server, `image-factory serve` (gunicorn,
  two web processes) and two `image-factory worker` processes, each in its own data
  directory (so nothing but Redis, S3 and the workers' key files is shared). The web side
  is given no key file at all: it serves the public halves `prepare` recorded in the store.

Both hand out the same client helpers (`get`, `curl`, `metric`), so one set of download checks
runs against each. Every process is stopped at the end, also when tests fail.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.services import RedisServer, S3Server, ServerProcess, _start_ready, free_ports
from workers.backends import choose_backend
from workers.catalog.bundled import install_bundled_extensions
from workers.releases.installer_base import copy_installer_base
from workers.releases.stored import Release, save_release
from workers.settings import Settings
from workers.store import LocalStore, Store, make_store

CURL_TIMEOUT = 300


def image_factory() -> str:
    return str(Path(sysconfig.get_path("scripts")) / "image-factory")


def copy_release(store: Store, source: tuple[LocalStore, Release], tmp: Path) -> None:
    """Copy the reference release into `store`."""
    src_store, release = source
    tmp.mkdir(parents=True, exist_ok=True)
    files = {name: release.fetch(src_store, name, tmp / name) for name in release.files}
    copy_installer_base(src_store, release, store, tmp)
    save_release(store, release, files)
    for path in files.values():
        path.unlink()


def stock(store: Store, settings: Settings, source: tuple[LocalStore, Release], tmp: Path) -> None:
    """The reference release and the bundled extensions in `store`."""
    copy_release(store, source, tmp)
    install_bundled_extensions(settings, store, source[1], lambda message: None)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


_CLIENT_TOKENS: dict[tuple[Path, str], str] = {}


def client_token(root: Path, client: str, make: Callable[[], str]) -> str:
    """The token of the client named `client` of the deployment at `root`, made by `make` on
    first use: per-client limits count against a token's name, and a name is made once."""
    key = (root, client)
    if key not in _CLIENT_TOKENS:
        _CLIENT_TOKENS[key] = make()
    return _CLIENT_TOKENS[key]


@dataclass
class Stack:
    """What every deployment offers the tests."""

    port: int
    root: Path
    env: dict[str, str]
    processes: dict[str, ServerProcess] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        name: str,
        argv: Sequence[str],
        probe_url: str | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:
        """Start (or restart) one process of the deployment, logging to `<root>/<name>.log`
        (`env`: variables to add to the deployment's, or with None to leave out)."""
        variables = {**self.env, **(env or {})}
        command = ["env", *(f"{k}={v}" for k, v in variables.items() if v is not None), *argv]
        self.processes[name] = _start_ready(
            lambda attempt: ServerProcess(name, command, self.root / f"{name}.log", self.root),
            (lambda: _answers(probe_url)) if probe_url else (lambda: True),
        )

    def wait_for_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never logged {text!r}:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def create_schematic(self, body: bytes) -> str:
        request = urllib.request.Request(f"{self.url}/schematics", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            sid: str = json.load(response)["id"]
        return sid

    def build_key(self, schematic: str, path: str, version: str = "v1.0.0") -> str:
        """`POST /builds` for the asset (which starts its build unless it is built): its key."""
        body = json.dumps({"schematic": schematic, "version": version, "path": path}).encode()
        request = urllib.request.Request(
            f"{self.url}/builds", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            key: str = json.load(response)["key"]
        return key

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`image-factory <args>` against this deployment's store (its settings)."""
        argv = ["env", *(f"{k}={v}" for k, v in self.env.items()), image_factory(), *args]
        return subprocess.run(argv, cwd=self.root, capture_output=True, text=True, check=False)

    def token(self, name: str, role: str) -> str:
        """A new token from `image-factory token create` (printed on its last line)."""
        created = self.cli("token", "create", name, "--role", role)
        assert created.returncode == 0, created.stderr
        return created.stdout.splitlines()[-1]

    def call(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        token: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, any status: (status, headers, body)."""
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=CURL_TIMEOUT) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get_json(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as response:
            found: dict[str, object] = json.load(response)
        return found

    def metric(self, name: str, **labels: str) -> float:
        """A value from `/metrics` (0 when the series does not exist yet)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as response:
            text = response.read().decode()
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        pattern = "^" + re.escape(f"{name}{{{wanted}}}" if wanted else name) + r" (\S+)$"
        found = re.search(pattern, text, re.M)
        return float(found.group(1)) if found else 0.0

    def curl(
        self, *args: str, cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """`curl -sS <args>`; the last argument is the URL (a bare path is on this stack)."""
        *options, url = args
        target = f"{self.url}{url}" if url.startswith("/") else url
        argv = ["curl", "-sS", "--max-time", str(CURL_TIMEOUT), *options, target]
        return subprocess.run(argv, cwd=cwd, capture_output=True, check=check)


def start_embedded(
    root: Path, data_dir: Path, extra_env: dict[str, str] | None = None, web_workers: int = 2
) -> Stack:
    port = free_ports(1)[0]
    env = {
        "IMAGE_FACTORY_DATA_DIR": str(data_dir),
        "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    stack = Stack(port, root, env)
    stack.start(
        "serve",
        [image_factory(), "serve", "--port", str(port), "--workers", str(web_workers)],
        f"http://127.0.0.1:{port}/healthz",
    )
    return stack


@dataclass
class ScaledStack(Stack):
    workers: list[str] = field(default_factory=list)

    def start_worker(self, name: str) -> None:
        """An `image-factory worker` with a data directory of its own."""
        data = self.root / f"{name}-data"
        data.mkdir(exist_ok=True)
        command = [image_factory(), "worker", "--concurrency", "1"]
        self.start(name, command, env={"IMAGE_FACTORY_DATA_DIR": str(data)})
        self.wait_for_log(name, " ready.")
        if name not in self.workers:
            self.workers.append(name)

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and its pool processes at once, as a machine dying would."""
        process = self.processes[name].proc
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def worker_logs(self) -> str:
        return "".join(self.log(name) for name in self.workers)


# What only workers are given: the web side holds no private key.
WORKER_ONLY = ("IMAGE_FACTORY_SIGNING_KEY", "IMAGE_FACTORY_SECUREBOOT_KEY")


def scaled_env(
    redis: RedisServer, s3: S3Server, bucket: str, keys: Path, port: int
) -> dict[str, str]:
    """The variables every process of the scaled deployment shares (`keys`: the directory
    `image-factory prepare` wrote the signing keys to)."""
    return {
        "IMAGE_FACTORY_BROKER_URL": redis.url,
        "IMAGE_FACTORY_S3_ENDPOINT": s3.endpoint,
        "IMAGE_FACTORY_S3_BUCKET": bucket,
        "IMAGE_FACTORY_S3_ACCESS_KEY": s3.access_key,
        "IMAGE_FACTORY_S3_SECRET_KEY": s3.secret_key,
        "IMAGE_FACTORY_SIGNING_KEY": str(keys / "signing-key.pem"),
        "IMAGE_FACTORY_SECUREBOOT_KEY": str(keys / "secureboot-signing-key.pem"),
        "IMAGE_FACTORY_SECUREBOOT_CERT": str(keys / "secureboot-signing-cert.pem"),
        "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
        # The PXE host is the one the tests talk to, so plain requests stream; a request for
        # another Host gets the S3 redirect.
        "IMAGE_FACTORY_PXE_URL": f"http://127.0.0.1:{port}",
    }


def prepare_scaled(
    root: Path, env: dict[str, str], source: tuple[LocalStore, Release], shared: Path
) -> None:
    """As docker-compose does it: the release into S3, then `prepare` once (bundled
    extensions into S3, and the keys every process shares, written under `shared`)."""
    seed = Settings.from_env({**env, "IMAGE_FACTORY_DATA_DIR": str(root / "seed")})
    copy_release(make_store(choose_backend(seed)), source, root / "seed-files")
    prepare_env = {
        k: v
        for k, v in env.items()
        if not k.startswith(("IMAGE_FACTORY_SIGNING", "IMAGE_FACTORY_SECUREBOOT"))
    }
    subprocess.run(
        ["env", *(f"{k}={v}" for k, v in prepare_env.items()),
         f"IMAGE_FACTORY_DATA_DIR={shared}", image_factory(), "prepare"],
        check=True, capture_output=True,
    )  # fmt: skip


def start_scaled(root: Path, env: dict[str, str], port: int, workers: int = 2) -> ScaledStack:
    stack = ScaledStack(port, root, env)
    for number in range(1, workers + 1):
        stack.start_worker(f"worker{number}")
    web_data = root / "web-data"
    web_data.mkdir(exist_ok=True)
    # No key file for the web side, not even the certificate: it reads the public halves
    # from the store.
    no_keys: dict[str, str | None] = dict.fromkeys(
        (*WORKER_ONLY, "IMAGE_FACTORY_SECUREBOOT_CERT"), None
    )
    stack.start(
        "serve",
        [image_factory(), "serve", "--port", str(port), "--workers", "2"],
        f"http://127.0.0.1:{port}/healthz",
        env={"IMAGE_FACTORY_DATA_DIR": str(web_data), **no_keys},
    )
    return stack
