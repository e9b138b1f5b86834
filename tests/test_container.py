"""The scaled mode run from the container image the `Dockerfile` builds (tests/containers.py).

`prepare`, the web service and two workers are containers of that image (Debian 12's own
Python, the build tools from its apt list), hardened as docker-compose.yml runs them:
read-only, no capabilities, no privilege gain, limits, every secret from a file. Redis (with a
password) and SeaweedFS run on the host (tests/services.py), reached over 127.0.0.1 with host
networking. The same download checks as the scaled-mode tests pass against it: an ISO
(`sha256sum -c`, the signature verified), single flight across the two worker containers,
and a worker container killed mid-build whose build the other one finishes.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.containers import (
    DATA,
    IMAGE,
    SECRETS,
    build_image,
    in_image,
    make_keys,
    owned_dir,
    podman_run,
    remove_containers,
    write_secret,
)
from tests.factory.download_checks import (
    check_downloads,
    check_single_flight,
    schematic_body,
    sha256_of,
)
from tests.factory.stacks import Stack, copy_release
from tests.services import free_ports, running_redis, running_weed
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore
from workers.store.s3 import S3Store

pytestmark = pytest.mark.container

BUCKET = "factory"
WORKER_OPTIONS = ("--security-opt", "systempaths=unconfined")
READY = " ready."


@dataclass
class ContainerStack(Stack):
    """A deployment whose processes are `podman run` in the foreground, logging as `Stack`'s."""

    containers: dict[str, str] = field(default_factory=dict)
    secrets_dir: Path = Path()
    secret_values: list[str] = field(default_factory=list)

    def run(
        self,
        role: str,
        args: list[str],
        env: dict[str, str],
        probe_url: str | None = None,
        options: tuple[str, ...] = (),
        secrets_dir: Path | None = None,
    ) -> None:
        """Run `role`'s container, its secrets from `secrets_dir` (default: the deployment's)."""
        container = f"factory-test-{self.port}-{role}"
        remove_containers([container])
        self.containers[role] = container
        data = owned_dir(self.root / f"{role}-data")
        argv = podman_run(
            container,
            args,
            env,
            {data: DATA, (secrets_dir or self.secrets_dir): f"{SECRETS}:ro"},
            ("--hostname", role, *options),
        )
        self.start(role, argv, probe_url)

    def start_worker(self, name: str) -> None:
        """Start (or restart: its log goes on) a worker container; return once it is ready."""
        log = self.root / f"{name}.log"
        readies = log.read_text().count(READY) if log.exists() else 0
        # As compose runs workers: a fresh /proc for the build sandbox's PID namespace.
        self.run(name, ["worker", "--concurrency", "1"], self.env, options=WORKER_OPTIONS)
        deadline = time.monotonic() + 120
        while self.log(name).count(READY) == readies:
            assert time.monotonic() < deadline, f"{name} never got ready:\n{self.log(name)}"
            time.sleep(0.2)

    def kill(self, role: str) -> None:
        """SIGKILL every process of the container at once, as a machine dying would."""
        subprocess.run(["podman", "kill", self.containers[role]], check=True, capture_output=True)
        self.processes[role].proc.wait(timeout=60)

    def worker_logs(self) -> str:
        return "".join(self.log(name) for name in ("worker1", "worker2"))

    def all_logs(self) -> str:
        return "".join(self.log(name) for name in self.containers)


KEY_VARIABLES = {
    "IMAGE_FACTORY_SIGNING_KEY": f"{SECRETS}/signing-key.pem",
    "IMAGE_FACTORY_SECUREBOOT_KEY": f"{SECRETS}/secureboot-key.pem",
    "IMAGE_FACTORY_SECUREBOOT_CERT": f"{SECRETS}/secureboot-cert.pem",
}


def _secret_env(
    secrets_dir: Path, redis_url: str, access: str, secret: str, keys: bool = True
) -> dict[str, str]:
    """Every credential (and with `keys`, every key) as a file; the variables only name the
    files. The keys are made with the README's openssl commands."""
    for name, content in {
        "broker-url": redis_url.encode(),
        "s3-access-key": access.encode(),
        "s3-secret-key": secret.encode(),
    }.items():
        write_secret(secrets_dir, name, content)
    if keys:
        make_keys(secrets_dir)
    return {
        "IMAGE_FACTORY_BROKER_URL_FILE": f"{SECRETS}/broker-url",
        "IMAGE_FACTORY_S3_ACCESS_KEY_FILE": f"{SECRETS}/s3-access-key",
        "IMAGE_FACTORY_S3_SECRET_KEY_FILE": f"{SECRETS}/s3-secret-key",
        **(KEY_VARIABLES if keys else {}),
    }


@pytest.fixture(scope="module")
def deployment(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainerStack]:
    root = tmp_path_factory.mktemp("container")
    build_image(tmp_path_factory.mktemp("image"))
    password = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as cleanup:
        redis = cleanup.enter_context(running_redis(tmp_path_factory.mktemp("redis"), password))
        s3 = cleanup.enter_context(running_weed(tmp_path_factory.mktemp("weed")))
        # The reference release goes into S3 from the host (built once per session);
        # `prepare` in its container then adds the bundled extensions to it.
        seed = Settings(
            data_dir=root / "seed",
            s3_endpoint=s3.endpoint,
            s3_bucket=BUCKET,
            s3_access_key=s3.access_key,
            s3_secret_key=s3.secret_key,
        )
        copy_release(S3Store.from_settings(seed), reference_release, root / "seed-files")

        port = free_ports(1)[0]
        secrets_dir = owned_dir(root / "secrets", 0o500)
        env = {
            "IMAGE_FACTORY_S3_ENDPOINT": s3.endpoint,
            "IMAGE_FACTORY_S3_BUCKET": BUCKET,
            "IMAGE_FACTORY_S3_REDIRECT": "false",
            "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
            **_secret_env(secrets_dir, redis.url, s3.access_key, s3.secret_key),
        }
        stack = ContainerStack(port, root, env, secrets_dir=secrets_dir)
        stack.secret_values = [password, s3.secret_key]
        cleanup.callback(lambda: remove_containers(list(stack.containers.values())))
        cleanup.callback(stack.stop)

        stack.run("prepare", ["prepare"], env)
        assert stack.processes["prepare"].proc.wait(timeout=600) == 0, stack.log("prepare")
        stack.start_worker("worker1")
        stack.start_worker("worker2")
        # The web container gets the credentials but no key: it signs nothing.
        web_secrets = owned_dir(root / "web-secrets", 0o500)
        web_env = {
            **{k: v for k, v in env.items() if k not in KEY_VARIABLES},
            **_secret_env(web_secrets, redis.url, s3.access_key, s3.secret_key, keys=False),
        }
        stack.run(
            "web",
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            web_env,
            f"http://127.0.0.1:{port}/healthz",
            secrets_dir=web_secrets,
        )
        yield stack


def test_the_image_runs_debian_python_unprivileged_without_compilers(
    deployment: ContainerStack,
) -> None:
    found = in_image("sh", "-c", "id -u; python3 -V; command -v gcc cc pip pip3 || true")
    uid, python, *leftovers = found.split("\n")
    assert uid == "10001"
    assert python == "Python 3.11.2"  # Debian 12's own: what the suite runs on too
    assert [line for line in leftovers if line] == []


def test_an_iso_passes_every_download_check(deployment: ContainerStack, tmp_path: Path) -> None:
    sid = deployment.create_schematic(schematic_body("container-iso"))
    check_downloads(deployment, sid, "metal-amd64.iso", tmp_path)
    key = deployment.build_key(sid, "metal-amd64.iso")
    assert f"build {key} finished" in deployment.worker_logs()


def test_one_build_for_fifty_requests_across_two_worker_containers(
    deployment: ContainerStack, tmp_path: Path
) -> None:
    sid = deployment.create_schematic(schematic_body("container-fifty"))
    key = check_single_flight(deployment, sid, tmp_path, deployment.worker_logs)
    assert deployment.worker_logs().count(f"build {key} finished") == 1


def test_a_killed_worker_containers_build_is_finished_by_the_other(
    deployment: ContainerStack, tmp_path: Path
) -> None:
    sid = deployment.create_schematic(schematic_body("container-kill"))
    path = "metal-amd64.raw.xz"
    url = f"{deployment.url}/image/{sid}/v1.0.0/{path}"
    key = deployment.build_key(sid, path)
    clients = [
        subprocess.Popen(["curl", "-sS", "--fail", "-o", str(tmp_path / f"c{n}"), url])
        for n in range(2)
    ]
    victim = _builder_of(deployment, key)
    survivor = "worker2" if victim == "worker1" else "worker1"
    deployment.kill(victim)

    assert [client.wait(timeout=600) for client in clients] == [0, 0]
    status = deployment.get_json(f"/builds/{key}")
    assert status["state"] == "done"
    assert {sha256_of(tmp_path / f"c{n}") for n in range(2)} == {status["sha256"]}
    assert f"build {key} finished" in deployment.log(survivor)
    assert f"build {key} finished" not in deployment.log(victim)
    deployment.start_worker(victim)


def _builder_of(stack: ContainerStack, key: str) -> str:
    """The worker container (its host name) running build `key`, once it is well under way."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = stack.get_json(f"/builds/{key}")
        if status["state"] == "running" and status.get("stage") in {"disk", "compress"}:
            return str(status["worker"]).rpartition("@")[2]
        assert status["state"] != "done", "the build finished before it could be interrupted"
        time.sleep(0.1)
    raise AssertionError(f"build {key} never got to its disk stage")


def test_no_secret_reaches_a_log_or_the_container_config(deployment: ContainerStack) -> None:
    logs = deployment.all_logs()
    running = [deployment.containers[role] for role in ("web", "worker1", "worker2")]
    inspected = subprocess.run(
        ["podman", "inspect", *running],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for value in deployment.secret_values:
        assert value not in logs
        assert value not in inspected
    config = json.loads(inspected)
    web = next(c for c in config if c["Name"] == deployment.containers["web"])
    # The web container holds no private key, and still serves the deployment's public key.
    (secrets_mount,) = [m["Source"] for m in web["Mounts"] if m["Destination"] == SECRETS]
    assert sorted(p.name for p in Path(secrets_mount).iterdir()) == [
        "broker-url",
        "s3-access-key",
        "s3-secret-key",
    ]
    assert not [v for v in web["Config"]["Env"] if v.split("=")[0] in KEY_VARIABLES]
    public = subprocess.run(
        ["openssl", "pkey", "-pubout", "-in", str(deployment.secrets_dir / "signing-key.pem")],
        capture_output=True,
        check=True,
    ).stdout
    assert deployment.curl("--fail", "/oci/cosign/signing-key.pub").stdout == public
    assert web["HostConfig"]["ReadonlyRootfs"] is True
    assert web["HostConfig"]["SecurityOpt"] == ["no-new-privileges"]
    assert IMAGE in web["ImageName"]
