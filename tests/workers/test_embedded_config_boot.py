"""A schematic with `embeddedMachineConfiguration`, built from the reference release through
the factory's own plan and build, boots in QEMU and the reference OS reports the sha256 of the
document it finds where Talos reads it (`factory: config sha256=<hex>`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.workers.assets import build_assets, stock_store
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = [pytest.mark.integration, pytest.mark.boot]

CONFIG = "version: v1alpha1\nmachine:\n  type: controlplane\n  token: not-so-secret\n"
SCHEMATIC = (
    "customization:\n"
    "  extraKernelArgs: [console=ttyS0, factory.poweroff=1, panic=-1]\n"
    "  systemExtensions:\n    officialExtensions: [factory/hello]\n"
    "  embeddedMachineConfiguration: |\n" + "".join(f"    {line}\n" for line in CONFIG.splitlines())
).encode()


def test_the_booted_system_reads_the_embedded_configuration(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, settings = stock_store(reference_release, tmp_path)
    paths = ["kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64"]
    built = build_assets(store, settings, paths, tmp_path / "out", SCHEMATIC)

    log = boot_and_capture(
        kernel=built["kernel-amd64"],
        initrd=built["initramfs-amd64.xz"],
        append=built["cmdline-metal-amd64"].read_text(),
    )

    digest = hashlib.sha256(CONFIG.encode()).hexdigest()
    assert_in_log(
        log,
        "factory: extension hello 1.0.0",
        f"factory: extension embedded-config {digest}",
        f"factory: config sha256={digest}",
        "factory: boot ok",
    )
    # The layer comes after the schematic's, as Talos' imager appends it.
    assert log.index("factory: extension schematic") < log.index("extension embedded-config")
