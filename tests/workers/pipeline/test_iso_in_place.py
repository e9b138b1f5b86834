"""A GRUB ISO built with its initramfs written straight into the image
(`workers.assembly.iso_fill`) is byte for byte the ISO xorriso makes from the initramfs file
built for the same schematic, with extensions (and their module layer) and without.

arm64 ISOs boot with systemd-boot only (their initramfs is inside the UKI inside efi.img),
so they are built as before and their reproducibility is in test_reproducible.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.workers.assets import SCHEMATIC, build_assets, stock_store
from workers.assembly.iso import make_iso
from workers.assembly.uki import OS_NAME
from workers.pipeline.boot_media import fetch_grub_dirs
from workers.planning.cmdline import asset_cmdline
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.releases.manifest import VMLINUZ
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

NO_EXTENSIONS = b"customization:\n  extraKernelArgs:\n    - console=ttyS0\n"


@pytest.mark.parametrize("text", [SCHEMATIC, NO_EXTENSIONS], ids=["extensions", "none"])
def test_iso_is_the_iso_of_the_initramfs_file(
    text: bytes, reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, settings = stock_store(reference_release, tmp_path)
    release = reference_release[1]
    built = build_assets(
        store, settings, ["initramfs-amd64.xz", "metal-amd64.iso"], tmp_path / "out", text
    )
    schematic = parse_schematic(text)
    plan = make_plan(
        store,
        schematic,
        schematic_id(schematic),
        "v1.0.0",
        parse_profile("metal-amd64.iso"),
        settings,
    )
    work = tmp_path / "by-hand"
    (work / "iso-work").mkdir(parents=True)
    bios, efi = fetch_grub_dirs(release, store, work)
    from_file = make_iso(
        work / "image.iso",
        workdir=work / "iso-work",
        kernel=release.fetch(store, VMLINUZ, work / "vmlinuz"),
        initramfs=built["initramfs-amd64.xz"],
        cmdline=asset_cmdline(plan, release),
        grub_bios_dir=bios,
        grub_efi_dir=efi,
        name=f"{OS_NAME} {release.version}",
        epoch=release.source_date_epoch,
    )
    assert built["metal-amd64.iso"].read_bytes() == from_file.read_bytes()
