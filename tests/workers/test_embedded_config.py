"""`embeddedMachineConfiguration`: an `embedded-config` layer after every other one (Talos'
imager ≥ 1.12), in what boots; refused, in upstream's words, for Talos releases before 1.12."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from extensions.embedded_config import make_embedded_config_extension
from schematics import parse_schematic, schematic_id
from tests.workers.releases.fakes import fake_files, fake_manifest, save_fake_release
from workers.errors import InvalidRequest
from workers.planning.plans import SOURCE_BLOB, make_plan
from workers.planning.profiles import parse_profile
from workers.releases.importer import TALOS_LAYOUT
from workers.releases.stored import blob_key, save_release
from workers.settings import Settings
from workers.store import LocalStore

CONFIG = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: X\n"
SCHEMATIC = (
    "customization:\n  embeddedMachineConfiguration: |\n"
    + "".join(f"    {line}\n" for line in CONFIG.splitlines())
).encode()
CONFIG_SHA = hashlib.sha256(CONFIG.encode()).hexdigest()


def _plan(store: LocalStore, settings: Settings, path: str, version: str = "v1.0.0"):  # type: ignore[no-untyped-def]
    schematic = parse_schematic(SCHEMATIC)
    return make_plan(
        store, schematic, schematic_id(schematic), version, parse_profile(path), settings
    )


def test_the_document_round_trips_through_the_schematic() -> None:
    assert parse_schematic(SCHEMATIC).customization.embedded_machine_configuration == CONFIG


@pytest.mark.parametrize(
    "path",
    [
        "initramfs-amd64.xz",
        "metal-amd64.iso",
        "metal-amd64.raw",
        "metal-amd64-uki.efi",
        "installer-amd64.tar",
    ],
)
def test_what_boots_gets_the_layer_last(
    store: LocalStore, settings: Settings, tmp_path: Path, path: str
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path)
    plan = _plan(store, settings, path)
    names = [e.name for e in plan.extensions]
    assert names == ["schematic", "embedded-config"]
    layer = plan.extensions[-1]
    assert (layer.version, layer.source) == (CONFIG_SHA, SOURCE_BLOB)
    tar = store.get_bytes(blob_key(layer.digest))
    assert hashlib.sha256(tar).hexdigest() == layer.digest


@pytest.mark.parametrize("path", ["kernel-amd64", "cmdline-metal-amd64", "extensions-amd64.sqsh"])
def test_kernel_cmdline_and_sysext_do_not(
    store: LocalStore, settings: Settings, tmp_path: Path, path: str
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path)
    plan = _plan(store, settings, path)
    assert "embedded-config" not in [e.name for e in plan.extensions]


def _talos_release(store: LocalStore, version: str, tmp: Path) -> None:
    files = fake_files(tmp / version)
    manifest = fake_manifest(version, files)
    save_release(store, replace(manifest, origin={"imported_layout": TALOS_LAYOUT}), files)


def test_talos_releases_before_1_12_refuse_it(
    store: LocalStore, settings: Settings, tmp_path: Path
) -> None:
    _talos_release(store, "v1.11.5", tmp_path)
    _talos_release(store, "v1.12.0", tmp_path)
    with pytest.raises(InvalidRequest) as refused:
        _plan(store, settings, "metal-amd64.iso", "v1.11.5")
    assert (
        str(refused.value) == "embedding configuration is not supported for Talos version v1.11.5"
    )
    # The kernel carries no configuration, so it builds at any version, as upstream.
    assert _plan(store, settings, "kernel-amd64", "v1.11.5").extensions == ()
    assert _plan(store, settings, "metal-amd64.iso", "v1.12.0").extensions[-1].name == (
        "embedded-config"
    )


def test_the_layer_is_talos_shaped_and_reproducible() -> None:
    tar = make_embedded_config_extension(CONFIG.encode(), 1700000000)
    assert tar == make_embedded_config_extension(CONFIG.encode(), 1700000000)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        config = members["rootfs/usr/local/etc/talos/config.yaml"]
        assert config.mode == 0o644  # canonical tars normalise modes
        assert archive.extractfile(config).read() == CONFIG.encode()  # type: ignore[union-attr]
        manifest = archive.extractfile(members["manifest.yaml"]).read().decode()  # type: ignore[union-attr]
    assert "name: embedded-config" in manifest
    assert f"version: {CONFIG_SHA}" in manifest
    assert "author: Imager" in manifest
