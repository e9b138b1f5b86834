"""The scaled deployment under load and faults: Redis, S3 (SeaweedFS), gunicorn with two web
processes and two `image-factory worker` processes, all real, on loopback.

The tests run in file order in one process (`scripts/test` hands out whole files to its xdist
workers) and share the deployment; the ones that stop Redis or S3 come last.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from cryptography.hazmat.primitives import serialization

from schematics import parse_schematic, schematic_id
from tests.factory.download_checks import (
    check_downloads,
    check_single_flight,
    headers_of,
    schematic_body,
    sha256_of,
    status_of,
)
from tests.factory.podman_pull import check_podman_policy, sigstore_check
from tests.factory.stacks import (
    ScaledStack,
    prepare_scaled,
    scaled_env,
    start_scaled,
)
from tests.services import (
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
from workers.outputs.schematics_store import load_schematic
from workers.pipeline.build_once import publish_build
from workers.pipeline.progress import StageClock
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore
from workers.store.s3 import S3Store

pytestmark = pytest.mark.integration

BUCKET = "factory"
BIG_ASSET_BYTES = 64 * 1024 * 1024


class Deployment:
    def __init__(self, stack: ScaledStack, redis: ServerProcess, weed: ServerProcess) -> None:
        self.stack = stack
        self.redis = redis
        self.weed = weed
        self.settings = Settings.from_env(stack.env)

    def s3_store(self) -> S3Store:
        return S3Store.from_settings(self.settings)

    def s3_client(self) -> object:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.settings.s3_endpoint,
            aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )


def _start_redis(workdir: Path) -> tuple[ServerProcess, RedisServer]:
    workdir.mkdir(parents=True)
    binary = shutil.which("redis-server")
    assert binary is not None
    server = RedisServer("127.0.0.1", free_ports(1)[0])
    argv = [binary, "--bind", "127.0.0.1", "--port", str(server.port), "--save", "",
            "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    process = _start_ready(
        lambda attempt: ServerProcess("redis", argv, workdir / "redis.log", workdir),
        lambda: _redis_answers(server),
    )
    return process, server


def _start_weed(workdir: Path) -> tuple[ServerProcess, S3Server, dict[str, int]]:
    names = ["master", "volume", "filer", "s3"]
    ports = dict(zip([*names, *(f"{n}-grpc" for n in names)], free_ports(8), strict=True))
    (workdir / "data").mkdir(parents=True)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", S3_ACCESS_KEY, S3_SECRET_KEY)
    process = _start_ready(
        lambda attempt: ServerProcess(
            "weed", weed_argv(workdir, ports), workdir / "weed.log", workdir
        ),
        lambda: _s3_round_trip(server),
    )
    return process, server, ports


@pytest.fixture(scope="module")
def deployment(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("scaled")
    redis, redis_server = _start_redis(root / "redis")
    weed, s3_server, weed_ports = _start_weed(root / "weed")
    stack: ScaledStack | None = None
    try:
        port = free_ports(1)[0]
        shared = root / "shared"
        env = scaled_env(redis_server, s3_server, BUCKET, shared / "keys", port)
        prepare_scaled(root, env, reference_release, shared)
        stack = start_scaled(root, env, port)
        yield Deployment(stack, redis, weed)
    finally:
        if stack is not None:
            stack.stop()
        weed.stop()
        redis.stop()
        for role in ("master", "volume", "filer", "s3"):
            socket = Path(f"/tmp/seaweedfs-{role}-grpc-{weed_ports[f'{role}-grpc']}.sock")
            with contextlib.suppress(FileNotFoundError):
                socket.unlink()


def _schematic(stack: ScaledStack, marker: str) -> str:
    return stack.create_schematic(schematic_body(marker))


def test_fifty_concurrent_requests_run_one_build(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "fifty")
    key = check_single_flight(stack, sid, tmp_path, stack.worker_logs)
    assert stack.worker_logs().count(f"build {key} finished") == 1
    assert stack.metric("image_factory_cache_misses_total", kind="initramfs") >= 1


def test_downloads_with_real_clients(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "clients")
    path = "metal-amd64.qcow2"
    digest = check_downloads(stack, sid, path, tmp_path)
    assert stack.build_key(sid, path) in deployment.stack.worker_logs()
    assert digest == hashlib.sha256((tmp_path / path).read_bytes()).hexdigest()


def test_the_web_side_holds_no_private_key(deployment: Deployment, tmp_path: Path) -> None:
    """The web processes are given no key file and find none in their data directory; they
    serve the public halves `prepare` recorded, the workers sign (downloads above, installer
    images here, SecureBoot ones included), and podman's policy check accepts the result."""
    stack = deployment.stack
    serve = stack.processes["serve"].proc.pid
    environ = Path(f"/proc/{serve}/environ").read_bytes().split(b"\0")
    assert not [
        v for v in environ if v.startswith((b"IMAGE_FACTORY_SIGNING", b"IMAGE_FACTORY_SECUREBOOT"))
    ]
    assert not (stack.root / "web-data" / "keys").exists()
    keys = Path(stack.env["IMAGE_FACTORY_SIGNING_KEY"]).parent
    private = serialization.load_pem_private_key(
        (keys / "signing-key.pem").read_bytes(), password=None
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert _body(stack, "/oci/cosign/signing-key.pub") == public
    cert = (keys / "secureboot-signing-cert.pem").read_bytes()
    assert _body(stack, "/secureboot/signing-cert.pem") == cert

    sid = _schematic(stack, "no-keys")
    check_podman_policy(stack.url, f"installer/{sid}", "v1.0.0", tmp_path)
    (tmp_path / "key.pub").write_bytes(public)
    registry = stack.url.removeprefix("http://")
    assert sigstore_check(registry, f"installer-secureboot/{sid}", "v1.0.0", tmp_path / "key.pub")


def _body(stack: ScaledStack, path: str) -> bytes:
    with urllib.request.urlopen(f"{stack.url}{path}", timeout=60) as response:
        data: bytes = response.read()
    return data


def test_another_host_is_redirected_to_presigned_s3(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "clients")  # built by the test before
    url = f"/image/{sid}/v1.0.0/metal-amd64.qcow2?filename=disk.qcow2"

    redirect = stack.curl("-D", "-", "-o", "/dev/null", "-H", "Host: factory.test", url)
    assert status_of(redirect.stdout) == 302
    location = headers_of(redirect.stdout)["location"]
    assert location.startswith(deployment.settings.s3_endpoint + f"/{BUCKET}/blobs/sha256/")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["response-content-disposition"] == ['attachment; filename="disk.qcow2"']

    followed = stack.curl("--fail", "-D", "-", "-o", str(tmp_path / "via-s3"), location)
    assert headers_of(followed.stdout)["content-disposition"] == 'attachment; filename="disk.qcow2"'
    direct = stack.curl("--fail", "-o", str(tmp_path / "direct"), url)
    assert direct.returncode == 0
    assert sha256_of(tmp_path / "via-s3") == sha256_of(tmp_path / "direct")
    head = stack.curl("-I", "-H", "Host: factory.test", url)
    assert status_of(head.stdout) == 200  # HEAD never redirects


def _wait_running(stack: ScaledStack, key: str, stages: set[str]) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = stack.get_json(f"/builds/{key}")
        if status["state"] == "running" and status.get("stage") in stages:
            return str(status["worker"])
        assert status["state"] != "done", "the build finished before it could be interrupted"
        time.sleep(0.1)
    raise AssertionError(f"build {key} never reached {stages}")


def test_killed_worker_build_is_finished_by_another(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "kill")
    path = "metal-amd64.raw.xz"
    url = f"{stack.url}/image/{sid}/v1.0.0/{path}"
    key = stack.build_key(sid, path)  # enqueues the build
    clients = [
        subprocess.Popen(["curl", "-sS", "--fail", "-o", str(tmp_path / f"c{n}"), url])
        for n in range(3)
    ]
    node = _wait_running(stack, key, {"disk", "compress"})
    victim = next(
        name for name in stack.workers if f"builder-{stack.processes[name].proc.pid}@" in node
    )
    survivor = next(name for name in stack.workers if name != victim)
    stack.kill_worker(victim)

    assert [client.wait(timeout=300) for client in clients] == [0, 0, 0]
    status = stack.get_json(f"/builds/{key}")
    assert status["state"] == "done"
    assert {sha256_of(tmp_path / f"c{n}") for n in range(3)} == {status["sha256"]}
    assert f"build {key} finished" in stack.log(survivor)
    assert f"build {key} finished" not in stack.log(victim)
    stack.start_worker(victim)


def test_killed_worker_build_is_finished_for_a_client_that_only_polls(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "poll")
    path = "metal-amd64.raw.xz"
    key = stack.build_key(sid, path)  # enqueued; nobody waits on a download
    node = _wait_running(stack, key, {"disk", "compress"})
    victim = next(
        name for name in stack.workers if f"builder-{stack.processes[name].proc.pid}@" in node
    )
    survivor = next(name for name in stack.workers if name != victim)
    stack.kill_worker(victim)

    # Only GET /builds/<key> now; without it the broker would wait out its visibility
    # timeout (the build time limit + 5 minutes) before handing the build out again.
    status = _wait_done(stack, key)
    assert f"build {key} finished" in stack.log(survivor)
    assert f"build {key} finished" not in stack.log(victim)
    stack.curl("--fail", "-o", str(tmp_path / "asset"), f"/image/{sid}/v1.0.0/{path}")
    assert sha256_of(tmp_path / "asset") == status["sha256"]
    stack.start_worker(victim)


def _wait_done(stack: ScaledStack, key: str) -> dict[str, object]:
    """The status of build `key` once it is done (it converges there after any redelivery)."""
    deadline = time.monotonic() + 120
    status = stack.get_json(f"/builds/{key}")
    while status["state"] != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = stack.get_json(f"/builds/{key}")
    assert status["state"] == "done", (status, stack.worker_logs()[-4000:])
    return status


def test_corrupt_blob_is_detected_and_rebuilt(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "corrupt")
    path = "initramfs-amd64.xz"
    url = f"/image/{sid}/v1.0.0/{path}"
    stack.curl("--fail", "-o", str(tmp_path / "first"), url)
    key = stack.build_key(sid, path)
    good = _wait_done(stack, key)
    size, sha = int(str(good["size"])), str(good["sha256"])
    assert sha256_of(tmp_path / "first") == sha
    before = stack.metric("image_factory_corrupt_blobs_total")
    client = deployment.s3_client()
    client.put_object(Bucket=BUCKET, Key=f"blobs/sha256/{sha}", Body=b"\0" * size)  # type: ignore[attr-defined]

    stack.curl("--fail", "-o", str(tmp_path / "again"), url)

    assert sha256_of(tmp_path / "again") == sha
    assert stack.worker_logs().count(f"build {key} started") == 2
    assert stack.metric("image_factory_corrupt_blobs_total") == before + 1


def test_redis_down_serves_cached_assets_and_refuses_new_builds(
    deployment: Deployment, tmp_path: Path
) -> None:
    stack = deployment.stack
    cached = f"/image/{_schematic(stack, 'clients')}/v1.0.0/metal-amd64.qcow2"
    new = f"/image/{_schematic(stack, 'redis-down')}/v1.0.0/cmdline-metal-amd64"
    stack.curl("--fail", "-o", str(tmp_path / "before"), cached)  # cached (by an earlier test)
    deployment.redis.stop()

    served = stack.curl("-D", "-", "-o", str(tmp_path / "cached"), cached)
    assert status_of(served.stdout) == 200
    assert headers_of(served.stdout)["etag"] == f'"{sha256_of(tmp_path / "cached")}"'

    refused = stack.curl("-D", "-", "-o", str(tmp_path / "refused"), new)
    assert status_of(refused.stdout) == 503
    assert headers_of(refused.stdout)["retry-after"].isdigit()
    assert b"unavailable" in (tmp_path / "refused").read_bytes()


def _seed_big_asset(deployment: Deployment, sid: str, path: str, tmp_path: Path) -> str:
    """A stored build of `path` whose blob is large enough to outlast the socket buffers."""
    store = deployment.s3_store()
    settings = deployment.settings
    schematic = load_schematic(store, sid)
    plan = make_plan(store, schematic, sid, "v1.0.0", parse_profile(path), settings)
    big = tmp_path / "big"
    with big.open("wb") as out:
        for block in range(BIG_ASSET_BYTES // (1 << 20)):
            out.write(hashlib.sha512(str(block).encode()).digest() * (1 << 14))
    publish_build(store, plan, big, time.monotonic(), StageClock(lambda stage, percent: None), None)
    return sha256_of(big)


def test_s3_stopped_mid_download_is_a_short_read(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    sid = _schematic(stack, "big")
    path = "cmdline-metal-amd64"
    _seed_big_asset(deployment, sid, path, tmp_path)
    url = f"{stack.url}/image/{sid}/v1.0.0/{path}"
    # Checked once (the process verifies it before serving it the first time) ...
    head = stack.curl("--fail", "-I", url)
    assert headers_of(head.stdout)["content-length"] == str(BIG_ASSET_BYTES)
    target = tmp_path / "partial"
    client = subprocess.Popen(
        ["curl", "-sS", "--limit-rate", "8M", "-D", str(tmp_path / "h"), "-o", str(target), url]
    )
    deadline = time.monotonic() + 60
    while (not target.exists() or target.stat().st_size < (4 << 20)) and client.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Killed, not stopped: a graceful stop may still finish the response in flight.
    deployment.weed.crash()

    code = client.wait(timeout=120)
    received = target.stat().st_size
    assert re.search(rb"HTTP/1.1 200", (tmp_path / "h").read_bytes())
    assert code != 0, f"curl reported success with {received} bytes"
    assert received < BIG_ASSET_BYTES


def test_s3_down_is_503_with_retry_after(deployment: Deployment, tmp_path: Path) -> None:
    stack = deployment.stack
    assert deployment.weed.proc.poll() is not None  # stopped by the test before
    url = f"/image/{_schematic_offline(deployment)}/v1.0.0/metal-amd64.qcow2"
    answer = stack.curl("-D", "-", "-o", str(tmp_path / "body"), url)
    assert status_of(answer.stdout) == 503
    assert headers_of(answer.stdout)["retry-after"].isdigit()
    body = (tmp_path / "body").read_bytes()
    assert body == b"the object store is unavailable; try again shortly\n"


def _schematic_offline(deployment: Deployment) -> str:
    """The ID of the schematic `_schematic(stack, "clients")` created (S3 is down now)."""
    return schematic_id(parse_schematic(schematic_body("clients")))
