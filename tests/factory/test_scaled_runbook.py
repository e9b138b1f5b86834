"""The README's scaled-mode runbook, followed on loopback, under restarts of Redis and S3.

The deployment is made as the runbook says: Redis with `appendonly yes`, SeaweedFS with one
S3 identity, the README's `/etc/image-factory/env` (its example hosts swapped for loopback
ports: the external URL as `localhost`, the PXE URL as `127.0.0.1`, so requests to
`127.0.0.1` stream and requests to `localhost` are redirected to S3's public URL), `prepare`
once, then the commands of the systemd units in `scripts/systemd/` (two workers, one web
service), each process with a data directory of its own. Only the reference release is
copied in beforehand (`prepare` would build it from Debian packages otherwise).

The tests run in file order and share the deployment; the ones that restart Redis and S3 or
stop the workers come last.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factory.download_checks import (
    check_downloads,
    check_single_flight,
    headers_of,
    schematic_body,
    sha256_of,
    status_of,
)
from tests.factory.stacks import ScaledStack, copy_release, image_factory
from tests.services import (
    _WEED_GRPC_SOCKET,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    RedisServer,
    S3Server,
    ServerProcess,
    _redis_answers,
    _s3_round_trip,
    _start_ready,
    free_ports,
    weed_argv,
)
from workers.keys.deployment_keys import RECORD
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore
from workers.store.s3 import S3Store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
UNITS = ROOT / "scripts" / "systemd"
WAIT = 120.0


def readme_env_file() -> dict[str, str]:
    """The variables of the runbook's `/etc/image-factory/env`."""
    block = re.search(r"```sh\n\s*# /etc/image-factory/env\n(.*?)```", README, re.S)
    assert block, "the README has no /etc/image-factory/env block"
    pairs = [line.strip().partition("=") for line in block.group(1).splitlines() if line.strip()]
    return {name: value for name, _, value in pairs}


def unit_command(unit: str, **options: str) -> list[str]:
    """A unit's ExecStart as argv: our `image-factory`, `--<option>` values replaced."""
    text = (UNITS / f"image-factory-{unit}.service").read_text()
    argv = shlex.split(re.search(r"^ExecStart=(.*)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert argv[0] == "/opt/image-factory/.venv/bin/image-factory"
    argv[0] = image_factory()
    for name, value in options.items():
        argv[argv.index(f"--{name}") + 1] = value
    return argv


class Restartable:
    """A server stopped and started again on the same ports with the same data."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        probe: Callable[[], bool],
        cwd: Path,
        leftovers: tuple[Path, ...] = (),
    ) -> None:
        self.name, self.argv, self.probe, self.cwd = name, argv, probe, cwd
        self.leftovers = leftovers
        self.process = self.start()

    def start(self) -> ServerProcess:
        self.process = _start_ready(
            lambda attempt: ServerProcess(self.name, self.argv, self.cwd / "server.log", self.cwd),
            self.probe,
        )
        return self.process

    def stop(self) -> None:
        self.process.stop()
        for path in self.leftovers:  # weed's gRPC sockets: it would not start on top of them
            path.unlink(missing_ok=True)


@dataclass
class Runbook:
    stack: ScaledStack
    redis: Restartable
    weed: Restartable
    keys: Path
    prepared: str  # what `prepare` said
    internals: tuple[str, ...]  # what no client-facing body may contain

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.stack.env)

    def start_worker(self, name: str, wait_ready: bool = True) -> None:
        data = self.stack.root / f"{name}-data"
        data.mkdir(exist_ok=True)
        self.stack.start(name, unit_command("worker"), env={"IMAGE_FACTORY_DATA_DIR": str(data)})
        if wait_ready:
            self.stack.wait_for_log(name, " ready.")
        if name not in self.stack.workers:
            self.stack.workers.append(name)

    def worker_pids(self) -> dict[str, int]:
        return {name: self.stack.processes[name].proc.pid for name in self.stack.workers}

    def assert_workers_alive(self, pids: dict[str, int]) -> None:
        assert self.worker_pids() == pids
        for name in pids:
            assert self.stack.processes[name].proc.poll() is None, self.stack.log(name)[-3000:]


def _loopback_env(root: Path, redis: RedisServer, s3: S3Server, port: int) -> dict[str, str]:
    """The README's env file with its example hosts and paths swapped for this machine's."""
    s3_port = s3.endpoint.rsplit(":", 1)[1]
    swaps = {
        "redis://redis.internal:6379/0": redis.url,
        "http://s3.internal:8333": s3.endpoint,
        "https://s3.example.com": f"http://localhost:{s3_port}",
        "https://factory.example.com": f"http://localhost:{port}",
        "http://pxe.factory.example.com": f"http://127.0.0.1:{port}",
        "/etc/image-factory": str(root / "etc"),
    }
    env = {}
    for name, value in readme_env_file().items():
        for example, here in swaps.items():
            value = value.replace(example, here)
        env[name] = value
    env["IMAGE_FACTORY_S3_ACCESS_KEY"] = S3_ACCESS_KEY
    env["IMAGE_FACTORY_S3_SECRET_KEY"] = S3_SECRET_KEY
    assert not [v for v in env.values() if "example.com" in v or ".internal" in v], env
    return env


@pytest.fixture(scope="module")
def runbook(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runbook]:
    root = tmp_path_factory.mktemp("runbook")
    (root / "redis").mkdir()
    redis = RedisServer("127.0.0.1", free_ports(1)[0])
    redis_argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(redis.port),
                  "--appendonly", "yes", "--dir", str(root / "redis")]  # fmt: skip
    names = ["master", "volume", "filer", "s3"]
    ports = dict(zip([*names, *(f"{n}-grpc" for n in names)], free_ports(8), strict=True))
    (root / "weed" / "data").mkdir(parents=True)
    s3 = S3Server(f"http://127.0.0.1:{ports['s3']}", S3_ACCESS_KEY, S3_SECRET_KEY)
    sockets = tuple(
        Path(_WEED_GRPC_SOCKET.format(role=role, port=ports[f"{role}-grpc"])) for role in names
    )
    port = free_ports(1)[0]
    env = _loopback_env(root, redis, s3, port)
    stack = ScaledStack(port, root, env)
    servers: list[Restartable] = []
    try:
        servers.append(
            Restartable("redis", redis_argv, lambda: _redis_answers(redis), root / "redis")
        )
        weed_argvs = weed_argv(root / "weed", ports)
        servers.append(
            Restartable("weed", weed_argvs, lambda: _s3_round_trip(s3), root / "weed", sockets)
        )
        redis_server, weed = servers
        settings = Settings.from_env({**env, "IMAGE_FACTORY_DATA_DIR": str(root / "seed")})
        copy_release(S3Store.from_settings(settings), reference_release, root / "seed-files")
        keys = Path(env["IMAGE_FACTORY_SIGNING_KEY"]).parent
        keys.mkdir(parents=True)  # the runbook's `install -d`
        prepared = subprocess.run(
            ["env", *(f"{k}={v}" for k, v in env.items()),
             f"IMAGE_FACTORY_DATA_DIR={root / 'prepare-data'}", image_factory(), "prepare"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        deployment = Runbook(
            stack,
            redis_server,
            weed,
            keys,
            prepared.stderr + prepared.stdout,
            (str(redis.port), str(ports["s3"]), "127.0.0.1", "redis://", "s3://", "blobs/",
             env["IMAGE_FACTORY_S3_BUCKET"]),
        )  # fmt: skip
        deployment.start_worker("worker1")
        deployment.start_worker("worker2")
        web_data = root / "web-data"
        web_data.mkdir()
        stack.start(
            "serve",
            # Two web processes, not the unit's four: this machine's two cores run the whole
            # deployment (and other tests) at once.
            unit_command("serve", host="127.0.0.1", port=str(port), workers="2"),
            f"http://127.0.0.1:{port}/healthz",
            env={"IMAGE_FACTORY_DATA_DIR": str(web_data)},
        )
        yield deployment
    finally:
        stack.stop()
        for server in reversed(servers):
            server.stop()


def _asset(stack: ScaledStack, marker: str, path: str = "initramfs-amd64.xz") -> str:
    return f"/image/{stack.create_schematic(schematic_body(marker))}/v1.0.0/{path}"


def _answer(stack: ScaledStack, path: str, tmp_path: Path) -> tuple[int, bytes]:
    """Status and body of a GET on the stack (the PXE host, so never a redirect)."""
    body = tmp_path / "body"
    done = stack.curl("-D", "-", "-o", str(body), path)
    return status_of(done.stdout), body.read_bytes()


def _assert_no_internals(runbook: Runbook, body: bytes) -> None:
    text = body.decode(errors="replace")
    assert not [word for word in runbook.internals if word in text], text


def _wait_state(stack: ScaledStack, key: str, states: set[str]) -> dict[str, object]:
    deadline = time.monotonic() + WAIT
    while True:
        with contextlib.suppress(urllib.error.HTTPError):
            status = stack.get_json(f"/builds/{key}")
            if status["state"] in states:
                return status
        assert time.monotonic() < deadline, f"build {key} never got to {states}"
        time.sleep(0.2)


def test_prepare_says_where_it_wrote_the_keys_and_records_them(runbook: Runbook) -> None:
    for name, variable in (
        ("signing-key.pem", "IMAGE_FACTORY_SIGNING_KEY"),
        ("secureboot-signing-key.pem", "IMAGE_FACTORY_SECUREBOOT_KEY"),
        ("secureboot-signing-cert.pem", "IMAGE_FACTORY_SECUREBOOT_CERT"),
    ):
        path = runbook.keys / name
        assert path.is_absolute()
        assert path.is_file()
        assert f"generated {path} (set {variable}={path}" in runbook.prepared
    assert S3Store.from_settings(runbook.settings).exists(RECORD)


def test_downloads_signatures_and_single_flight(runbook: Runbook, tmp_path: Path) -> None:
    stack = runbook.stack
    sid = stack.create_schematic(schematic_body("runbook"))
    check_single_flight(stack, sid, tmp_path / "flight", stack.worker_logs)
    check_downloads(stack, sid, "initramfs-amd64.xz", tmp_path / "checks")


def test_downloads_are_redirected_to_the_public_s3_url(runbook: Runbook, tmp_path: Path) -> None:
    stack = runbook.stack
    path = _asset(stack, "runbook")  # built by the test before
    external = runbook.settings.external_url  # http://localhost:<port>: not the PXE host
    redirect = stack.curl("-D", "-", "-o", "/dev/null", f"{external}{path}")
    assert status_of(redirect.stdout) == 302
    assert headers_of(redirect.stdout)["location"].startswith(
        f"{runbook.settings.s3_public_url}/{runbook.settings.s3_bucket}/blobs/sha256/"
    )
    stack.curl("--fail", "-L", "-o", str(tmp_path / "via-s3"), f"{external}{path}")
    stack.curl("--fail", "-o", str(tmp_path / "sums"), f"{path}.sha256")
    assert (tmp_path / "sums").read_text().split()[0] == sha256_of(tmp_path / "via-s3")


def test_ready_with_workers_and_their_count_in_metrics(runbook: Runbook) -> None:
    stack = runbook.stack
    assert stack.curl("--fail", "/readyz").returncode == 0
    assert stack.metric("image_factory_workers_alive") == 2
    for name in stack.workers:
        log = stack.log(name)
        assert "--uid" not in log
        # The app's own lines carry a timestamp, as Celery's do.
        stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        assert re.search(stamp + r"WARNING workers\.dispatch\.celery_app: ", log, re.M)


def _refusal(runbook: Runbook, unit: str, tmp_path: Path, **env: str) -> str:
    """Run the unit's command with `env` changed (an empty value: unset); it must exit
    non-zero at once, generating nothing; what it said."""
    variables = {**os.environ, **runbook.stack.env, "IMAGE_FACTORY_DATA_DIR": str(tmp_path), **env}
    options = {"host": "127.0.0.1", "port": str(free_ports(1)[0])} if unit == "serve" else {}
    done = subprocess.run(
        unit_command(unit, **options),
        env={k: v for k, v in variables.items() if v},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert not (tmp_path / "keys").exists()  # nothing generated
    return done.stderr


def test_missing_keys_stop_a_worker_saying_what_to_set(runbook: Runbook, tmp_path: Path) -> None:
    """Workers sign, so they need the keys; `serve` holds none (test_scaled_mode checks it
    starts and serves without them)."""
    said = _refusal(runbook, "worker", tmp_path, IMAGE_FACTORY_SIGNING_KEY="")
    assert "IMAGE_FACTORY_SIGNING_KEY not set" in said
    said = _refusal(
        runbook,
        "worker",
        tmp_path,
        IMAGE_FACTORY_SECUREBOOT_KEY="",
        IMAGE_FACTORY_SECUREBOOT_CERT="",
    )
    assert "IMAGE_FACTORY_SECUREBOOT_KEY, IMAGE_FACTORY_SECUREBOOT_CERT not set" in said


def test_a_foreign_key_is_refused_as_a_mismatch(runbook: Runbook, tmp_path: Path) -> None:
    other = tmp_path / "other-signing-key.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # Only workers read key files: `serve` serves the public halves `prepare` recorded.
    said = _refusal(runbook, "worker", tmp_path, IMAGE_FACTORY_SIGNING_KEY=str(other))
    assert "key mismatch" in said
    assert f"IMAGE_FACTORY_SIGNING_KEY ({other}) has public key sha256" in said


@pytest.mark.parametrize(
    ("outage", "mid_build"),
    [(1.0, False), (1.0, True), (15.0, True)],
    ids=["short-idle", "short-mid-build", "long-mid-build"],
)
def test_redis_restart_is_ridden_out(
    runbook: Runbook, tmp_path: Path, outage: float, mid_build: bool
) -> None:
    stack = runbook.stack
    pids = runbook.worker_pids()
    building = _asset(stack, f"redis-{outage}-{mid_build}")
    schematic = building.split("/")[2]
    key = stack.build_key(schematic, "initramfs-amd64.xz") if mid_build else ""
    if mid_build:
        assert _wait_state(stack, key, {"running", "done"})["state"] == "running"
    runbook.redis.stop()

    # cmdline carries the schematic's kernel args: a new build, unlike the shared kernel.
    during = _asset(stack, f"redis-new-{outage}-{mid_build}", "cmdline-metal-amd64")
    status, body = _answer(stack, during, tmp_path)
    assert status == 503
    assert b"the build queue is unavailable" in body
    _assert_no_internals(runbook, body)
    ready, body = _answer(stack, "/readyz", tmp_path)
    assert ready == 503
    _assert_no_internals(runbook, body)
    time.sleep(outage)
    runbook.redis.start()

    # The web side recovers by itself; the workers never went away.
    status, _ = _answer(stack, during, tmp_path)
    assert status == 200
    if mid_build:
        done = _wait_state(stack, key, {"done", "failed"})
        assert done["state"] == "done", done
        stack.curl("--fail", "-o", str(tmp_path / "built"), building)
        assert sha256_of(tmp_path / "built") == done["sha256"]
    runbook.assert_workers_alive(pids)
    for name in pids:  # each lost its broker connection and made a new one
        log = stack.log(name)
        assert log.rindex("Connected to ") > log.rindex("Connection to broker lost")


def test_s3_restart_is_ridden_out(runbook: Runbook, tmp_path: Path) -> None:
    stack = runbook.stack
    pids = runbook.worker_pids()
    cached = _asset(stack, "runbook")  # built earlier
    building = _asset(stack, "s3-restart")
    key = stack.build_key(building.split("/")[2], "initramfs-amd64.xz")
    assert _wait_state(stack, key, {"running", "done"})["state"] == "running"
    runbook.weed.stop()

    for path in (cached, building):
        status, body = _answer(stack, path, tmp_path)
        assert status == 503
        assert b"the object store is unavailable" in body
        _assert_no_internals(runbook, body)
    runbook.weed.start()

    done = _wait_state(stack, key, {"done", "failed"})
    assert done["state"] == "done", done
    stack.curl("--fail", "-o", str(tmp_path / "built"), building)
    assert sha256_of(tmp_path / "built") == done["sha256"]
    assert stack.curl("--fail", "-o", "/dev/null", cached).returncode == 0
    runbook.assert_workers_alive(pids)


def test_no_worker_is_not_ready_and_a_worker_started_before_redis_waits(
    runbook: Runbook, tmp_path: Path
) -> None:
    stack = runbook.stack
    for name in list(stack.workers):
        process = stack.processes[name].proc
        process.terminate()  # what `systemctl stop` sends: Celery's warm shutdown
        assert process.wait(timeout=WAIT) == 0  # a requested stop is a success
        stack.workers.remove(name)
    status, body = _answer(stack, "/readyz", tmp_path)
    assert status == 503
    assert b"no build worker is alive" in body
    assert stack.metric("image_factory_workers_alive") == 0

    runbook.redis.stop()
    runbook.start_worker("early", wait_ready=False)
    stack.wait_for_log("early", "Cannot connect to ")
    runbook.redis.start()
    stack.wait_for_log("early", " ready.")
    assert stack.processes["early"].proc.poll() is None

    path = _asset(stack, "early-worker", "cmdline-metal-amd64")
    assert stack.curl("--fail", "-o", str(tmp_path / "cmdline"), path).returncode == 0
    assert "finished" in stack.log("early")
    # Ready again once the worker's heartbeat reaches Redis (it retries every second).
    deadline = time.monotonic() + WAIT
    while _answer(stack, "/readyz", tmp_path)[0] != 200:
        assert time.monotonic() < deadline, stack.log("early")[-3000:]
        time.sleep(0.5)
