"""The container image, built from the `Dockerfile` as it stands, and containers run from it.

No container registry is reachable from CI, so `debian:12-slim` is made locally: a minbase
`debootstrap` of Debian 12 from the mirror apt already uses, imported under that name (kept
in podman's image store; a later run reuses it, and `podman rmi` it to refresh). The host's
extra CA certificates and pip configuration are copied into that base only, so pip inside the
build reaches PyPI the way the host does; the Dockerfile users get knows nothing of them.

podman runs everything: `--isolation=chroot` builds (this machine's hybrid cgroups refuse the
default OCI runtime), Debian's `runc` runs containers, with host networking only (containers
talk over 127.0.0.1) and ulimits no higher than the host's. The image build uses podman's
layer cache, so a run with unchanged sources only re-tags.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "docker.io/library/debian:12-slim"
IMAGE = "localhost/image-factory:test"
SUITE = "bookworm"
# The service's user in the image (Dockerfile: useradd --uid 10001): what owns mounted files.
FACTORY_UID = 10001
DATA = "/var/lib/image-factory/data"
SECRETS = "/run/secrets"
BUILD_TIMEOUT = 1800
LOG_TAIL_CHARS = 4000
BUILD_LOCK = Path("/var/tmp/image-factory-test-image.lock")
# Host CA certificates and pip configuration, where the host has them.
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
HOST_PIP_CONFIG = Path("/etc/pip.conf")

# What every container gets: host networking, this machine's OCI runtime and limits, and the
# hardening docker-compose.yml asks for (read-only root, no capabilities, no privilege gain,
# memory and process limits; /tmp is the only scratch space outside the data directory).
PODMAN_RUN = [
    "podman", "--runtime", "runc", "run", "--rm", "--network", "host",
    "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
    "--read-only", "--tmpfs", "/tmp:rw,size=512m,mode=1777",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--memory", "2g", "--pids-limit", "512",
]  # fmt: skip


def _run(argv: Sequence[str], log: Path, timeout: float = BUILD_TIMEOUT) -> None:
    """Run a preparation step with its output in `log`; fail with the log's tail."""
    with log.open("ab") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
        raise AssertionError(f"{' '.join(argv)} exited with {done.returncode}:\n{tail}")


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 `.sources` or `sources.list`)."""
    candidates = [*sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for path in candidates:
        for uri in re.findall(r"^URIs:\s*(\S+)", path.read_text(), re.M):
            if not uri.rstrip("/").endswith("-security"):
                return str(uri)
    listing = Path("/etc/apt/sources.list")
    text = listing.read_text() if listing.exists() else ""
    found = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text, re.M)
    if found is None:
        raise AssertionError("no Debian mirror in /etc/apt/sources.list(.d)")
    return found.group(1)


def ensure_base_image(work: Path) -> None:
    """`debian:12-slim`, made locally unless podman holds it already."""
    if image_exists(BASE_IMAGE):
        return
    rootfs = work / "rootfs"
    log = work / "debootstrap.log"
    _run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror()], log)
    # The host's extra CAs (update-ca-certificates, run when the Dockerfile installs
    # ca-certificates, bundles them) and its pip configuration, for pip inside the build.
    if HOST_CA_DIR.is_dir():
        shutil.copytree(HOST_CA_DIR, rootfs / HOST_CA_DIR.relative_to("/"), dirs_exist_ok=True)
    if HOST_PIP_CONFIG.is_file():
        shutil.copy(HOST_PIP_CONFIG, rootfs / HOST_PIP_CONFIG.relative_to("/"))
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / leftover)
        (rootfs / leftover / "partial").mkdir(parents=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    with log.open("ab") as out:
        imported = subprocess.run(
            ["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, stdout=out, stderr=out
        )
    assert tar.wait() == 0
    assert imported.returncode == 0, log.read_text()[-LOG_TAIL_CHARS:]
    shutil.rmtree(rootfs)


def build_image(work: Path) -> None:
    """The image from the repository's Dockerfile (podman's layer cache makes reruns quick).

    Test processes running side by side (pytest-xdist) take turns: the second finds the base
    made and every layer cached."""
    with BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ensure_base_image(work)
        _run(
            ["podman", "build", "--isolation=chroot", "--network", "host", "--layers",
             "-t", IMAGE, str(ROOT)],
            work / "build.log",
        )  # fmt: skip


def owned_dir(path: Path, mode: int = 0o700) -> Path:
    """A host directory the container's user owns, to mount into it."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    shutil.chown(path, FACTORY_UID, FACTORY_UID)
    return path


def write_secret(directory: Path, name: str, content: bytes) -> Path:
    """A secret file only the container's user can read."""
    path = directory / name
    path.write_bytes(content)
    path.chmod(0o400)
    shutil.chown(path, FACTORY_UID, FACTORY_UID)
    return path


def podman_run(
    name: str,
    args: Sequence[str],
    env: dict[str, str],
    mounts: dict[Path, str],
    options: Sequence[str] = (),
) -> list[str]:
    """argv of `podman run` (in the foreground: the caller logs and stops it) of the image."""
    argv = [*PODMAN_RUN, "--name", name, *options]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    for host, target in mounts.items():
        argv += ["--volume", f"{host}:{target}"]
    return [*argv, IMAGE, *args]


def remove_containers(names: Sequence[str]) -> None:
    """Stop and remove containers at once, whatever state they are in."""
    if names:
        subprocess.run(
            ["podman", "rm", "--force", "--time", "0", "--ignore", *names], capture_output=True
        )


def in_image(*argv: str) -> str:
    """Output of a command run in a throwaway container of the image."""
    done = subprocess.run(
        [*PODMAN_RUN, "--entrypoint", argv[0], IMAGE, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_keys(directory: Path) -> None:
    """The signing keys a deployment shares, made as the README says, readable by the
    container's user only: the asset signing key (ECDSA P-256) and the SecureBoot key and
    certificate (RSA)."""
    signing = directory / "signing-key.pem"
    key, cert = directory / "secureboot-key.pem", directory / "secureboot-cert.pem"
    for argv in (
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(signing)],
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
         "-subj", "/CN=Image Factory Secure Boot", "-keyout", str(key), "-out", str(cert)],
    ):  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True)
    for path in (signing, key, cert):
        path.chmod(0o400)
        shutil.chown(path, FACTORY_UID, FACTORY_UID)
