# TEMPORARY (not committed): one direct boot with extension + module layers built via sessions.
from __future__ import annotations

from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.workers.assets import build_assets, stock_store, the_schematic
from workers.releases.stored import Release
from workers.store import LocalStore


@pytest.mark.boot
def test_direct_boot(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("assets")
    store, settings = stock_store(reference_release, root)
    built = build_assets(
        store, settings, ["kernel-amd64", "cmdline-metal-amd64", "initramfs-amd64.xz"], root / "out"
    )
    _, sid = the_schematic()
    log = boot_and_capture(
        kernel=built["kernel-amd64"],
        initrd=built["initramfs-amd64.xz"],
        append=built["cmdline-metal-amd64"].read_text(),
    )
    assert_in_log(
        log,
        "factory: extension hello 1.0.0",
        "factory: extension dummy-module 1.0.0-v1.0.0",
        f"factory: extension schematic {sid}",
        "factory: extension modules.dep ",
        "factory: module dummy loaded",
        "factory: boot ok",
    )
