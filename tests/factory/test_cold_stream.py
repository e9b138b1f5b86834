"""Cold kernel and initramfs downloads start before their build is published
(`factory.cold_stream`): the known bytes first, the rest once built, the whole checked.

Ordering, not timing: the first bytes are read while no worker runs (so no manifest can
exist), then a worker is started and the rest read. Embedded (local store, the Flask test
client, a build worker in a thread) and scaled (gunicorn, Redis, SeaweedFS S3, an
`image-factory worker` started late).
"""

from __future__ import annotations

import dataclasses
import hashlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from factory import cold_stream, create_app
from factory.cold_stream import ColdStreamCut
from schematics import parse_schematic
from tests.factory.stacks import ScaledStack, prepare_scaled, scaled_env, start_scaled
from tests.services import S3Server, free_ports, running_redis
from tests.workers.build_worker import build_worker
from tests.workers.pipeline.test_link_safety import write_extension
from tests.workers.releases.fakes import save_fake_release
from workers.assembly.run import ToolError
from workers.catalog.extensions import add_extension
from workers.outputs.finished_builds import BuiltAsset, read_manifest
from workers.outputs.known_prefix import KnownPrefix
from workers.outputs.schematics_store import load_schematic, save_schematic
from workers.pipeline import build_once as builds_module
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.manifest import INITRAMFS, VMLINUZ
from workers.releases.stored import Release, blob_key, load_release
from workers.settings import Settings
from workers.store import LocalStore, Store
from workers.store.s3 import S3Store

VERSION = "v1.0.0"


@dataclasses.dataclass(frozen=True)
class Cold:
    app: Flask
    store: LocalStore
    settings: Settings
    release: Release
    root: Path

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def schematic(self, marker: str, *extensions: str) -> str:
        listed = "".join(f"      - factory/{name}\n" for name in extensions)
        body = f"customization:\n  extraKernelArgs: [cold.test={marker}]\n"
        if listed:
            body += f"  systemExtensions:\n    officialExtensions:\n{listed}"
        return save_schematic(self.store, parse_schematic(body.encode()))

    def key(self, sid: str, path: str) -> str:
        return plan_key(self.store, self.settings, sid, path)

    def release_bytes(self, name: str) -> bytes:
        return self.store.get_bytes(blob_key(self.release.files[name].sha256))


def plan_key(store: Store, settings: Settings, sid: str, path: str) -> str:
    schematic = load_schematic(store, sid)
    return make_plan(store, schematic, sid, VERSION, parse_profile(path), settings).key


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Cold:
    root = tmp_path_factory.mktemp("cold")
    # Bounded, so a request that waits instead of streaming fails rather than hangs.
    settings = Settings(data_dir=root / "data", build_wait=120)
    store = LocalStore(settings.data_dir / "store")
    release = save_fake_release(store, VERSION, root / "releases")
    plain = write_extension(root / "src", "plain", {"usr/local/bin/plain": b"plain\n"}, {})
    ucode = write_extension(
        root / "src", "ucode", {"usr/lib/firmware/intel-ucode/06-55-04": b"ucode" * 64}, {}
    )
    assert not add_extension(store, plain, "factory").cpu_microcode
    assert add_extension(store, ucode, "factory").cpu_microcode
    return Cold(create_app(settings, store=store), store, settings, release, root)


def _first_then_rest(cold: Cold, url: str, key: str) -> tuple[bytes, bytes, dict[str, str]]:
    """The first chunk of a cold GET (a kernel's plan is the same for every schematic: only
    the module's first kernel download is cold), read while no worker runs (asserting no build is
    published), then the rest, read while a worker builds it."""
    response = cold.client.get(url, buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    chunks = response.iter_encoded()
    first = next(chunks)
    assert first
    assert read_manifest(cold.store, key) is None  # nothing published: no worker ran yet
    with build_worker(cold.settings):
        rest = b"".join(chunks)
    response.close()
    return first, rest, dict(response.headers)


def _drain(response: TestResponse, into: bytearray) -> None:
    for chunk in response.iter_encoded():
        into += chunk


def _published(cold: Cold, key: str) -> tuple[BuiltAsset, bytes]:
    built = read_manifest(cold.store, key)
    assert built is not None
    return built, cold.store.get_bytes(built.blob)


@pytest.mark.integration
def test_a_cold_kernel_is_sent_before_its_build_is_published(cold: Cold) -> None:
    sid = cold.schematic("kernel")
    key = cold.key(sid, "kernel-amd64")
    kernel = cold.release_bytes(VMLINUZ)
    first, rest, headers = _first_then_rest(cold, f"/image/{sid}/{VERSION}/kernel-amd64", key)
    assert kernel.startswith(first)
    built, blob = _published(cold, key)
    assert first + rest == blob == kernel
    assert hashlib.sha256(first + rest).hexdigest() == built.sha256
    assert headers["Content-Length"] == str(len(kernel))
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="kernel-amd64"'
    assert "ETag" not in headers  # not known before the build
    # Built now: served from the store with every header.
    again = cold.client.get(f"/image/{sid}/{VERSION}/kernel-amd64")
    assert again.data == blob
    assert again.headers["ETag"] == f'"{built.sha256}"'


@pytest.mark.integration
def test_a_cold_initramfs_starts_with_its_base_before_the_build_is_published(
    cold: Cold,
) -> None:
    sid = cold.schematic("initramfs", "plain")
    key = cold.key(sid, "initramfs-amd64.xz")
    base = cold.release_bytes(INITRAMFS)
    url = f"/image/{sid}/{VERSION}/initramfs-amd64.xz?filename=mine.xz"
    first, rest, headers = _first_then_rest(cold, url, key)
    assert base.startswith(first)
    built, blob = _published(cold, key)
    assert first + rest == blob
    assert len(blob) > len(base)
    assert blob.startswith(base)
    assert hashlib.sha256(first + rest).hexdigest() == built.sha256
    assert "Content-Length" not in headers  # chunked: the size is not known ahead
    assert headers["Content-Type"] == "application/x-xz"
    assert headers["Content-Disposition"] == 'attachment; filename="mine.xz"'


@pytest.mark.integration
def test_microcode_or_the_setting_off_waits_for_the_build(cold: Cold) -> None:
    """With an extension bringing CPU microcode the initramfs does not start with the base:
    nothing is sent before the build (with no worker, the wait ends in a 503); the same for
    any initramfs with IMAGE_FACTORY_STREAM_COLD off."""
    impatient = dataclasses.replace(cold.settings, build_wait=1)
    off = dataclasses.replace(impatient, stream_cold=False)
    sid = cold.schematic("microcode", "plain", "ucode")
    url = f"/image/{sid}/{VERSION}/initramfs-amd64.xz"
    waited = create_app(impatient, store=cold.store).test_client().get(url)
    assert waited.status_code == 503
    plain_sid = cold.schematic("off", "plain")
    plain_url = f"/image/{plain_sid}/{VERSION}/initramfs-amd64.xz"
    assert create_app(off, store=cold.store).test_client().get(plain_url).status_code == 503
    with build_worker(cold.settings):
        built = cold.client.get(url)
    assert built.status_code == 200
    assert built.headers["ETag"]  # served once built, as any built asset
    assert built.data.startswith(b"070701")  # the early microcode cpio, in front of the base
    assert not built.data.startswith(cold.release_bytes(INITRAMFS))


@pytest.mark.integration
def test_a_failed_build_cuts_the_cold_download(cold: Cold, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> Path:
        raise ToolError(["mksquashfs", "x"], 1, "boom")

    monkeypatch.setattr(builds_module, "build_asset", failing)
    sid = cold.schematic("fails", "plain")
    base = cold.release_bytes(INITRAMFS)
    with build_worker(cold.settings):
        url = f"/image/{sid}/{VERSION}/initramfs-amd64.xz"
        response = cold.client.get(url, buffered=False)
        assert response.status_code == 200
        received = bytearray()
        with pytest.raises(ColdStreamCut, match="did not finish"):
            _drain(response, received)
    # Part of the base went out, then the body ended without its end (no last chunk).
    assert received
    assert base.startswith(received)
    assert len(received) < len(base)


@pytest.mark.integration
def test_a_build_that_does_not_start_with_what_was_sent_cuts_the_download(
    cold: Cold, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes sent ahead are the wrong ones (here the kernel, claimed as the initramfs'
    start): the body never ends cleanly, whatever the client has received."""
    kernel = cold.release.files[VMLINUZ]

    def wrong(store: Store, plan: object) -> KnownPrefix:
        return KnownPrefix(blob_key(kernel.sha256), kernel.size, whole=False)

    monkeypatch.setattr(cold_stream, "known_prefix", wrong)
    sid = cold.schematic("mismatch", "plain")
    key = cold.key(sid, "initramfs-amd64.xz")
    with build_worker(cold.settings):
        response = cold.client.get(f"/image/{sid}/{VERSION}/initramfs-amd64.xz", buffered=False)
        assert response.status_code == 200
        received = bytearray()
        with pytest.raises(ColdStreamCut):
            _drain(response, received)
    built, blob = _published(cold, key)
    assert bytes(received) != blob
    assert len(received) < built.size  # the last bytes were held back


# --- scaled mode: gunicorn, Redis, S3 ---------------------------------------------------------


@pytest.fixture(scope="module")
def scaled_late_worker(
    reference_release: tuple[LocalStore, Release],
    s3_server: S3Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ScaledStack, Settings]]:
    """The scaled deployment with no worker yet (its own Redis, its own bucket)."""
    root = tmp_path_factory.mktemp("cold-scaled")
    (root / "redis").mkdir()
    with running_redis(root / "redis") as redis:
        port = free_ports(1)[0]
        shared = root / "shared"
        env = scaled_env(redis, s3_server, "cold-stream", shared / "keys", port)
        prepare_scaled(root, env, reference_release, shared)
        stack = start_scaled(root, env, port, workers=0)
        try:
            yield stack, Settings.from_env({**env, "IMAGE_FACTORY_DATA_DIR": str(root / "t")})
        finally:
            stack.stop()


@pytest.mark.integration
def test_scaled_cold_initramfs_streams_from_s3_before_the_build(
    scaled_late_worker: tuple[ScaledStack, Settings],
) -> None:
    stack, settings = scaled_late_worker
    store = S3Store.from_settings(settings)
    sid = stack.create_schematic(
        b"customization:\n  systemExtensions:\n    officialExtensions: [factory/hello]\n"
    )
    path = "initramfs-amd64.xz"
    key = plan_key(store, settings, sid, path)
    release = load_release(store, VERSION, "amd64")
    base = store.get_bytes(blob_key(release.files[INITRAMFS].sha256))
    url = f"{stack.url}/image/{sid}/{VERSION}/{path}"
    with urllib.request.urlopen(url, timeout=300) as response:
        assert response.status == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        first = response.read(4096)
        assert first
        assert base.startswith(first)
        assert read_manifest(store, key) is None  # no worker exists yet
        stack.start_worker("worker1")
        body = first + response.read()
    built = read_manifest(store, key)
    assert built is not None
    assert body == store.get_bytes(built.blob)
    assert body.startswith(base)
    assert len(body) > len(base)
    assert hashlib.sha256(body).hexdigest() == built.sha256
