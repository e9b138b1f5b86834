"""Initramfs assembly steps on tiny trees: layer order, firmware and microcode (the member
layout: test_initramfs_members).
The module layer and booting are tested with the reference release elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.assembly.cpio import list_cpio
from workers.assembly.initramfs import (
    layer_order,
    split_extension_extras,
)
from workers.assembly.initramfs_members import make_microcode_cpio
from workers.assembly.squashfs import list_squashfs, make_squashfs

EPOCH = 1700000000


def test_layer_order_sorts_indexes_as_strings() -> None:
    assert layer_order(3) == [0, 1, 2]
    assert layer_order(12) == [0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9]


def _extension(root: Path, tag: str) -> Path:
    fw = root / "rootfs/usr/lib/firmware"
    (fw / "intel-ucode").mkdir(parents=True)
    (fw / "intel-ucode/06-01-01").write_bytes(f"intel-b-{tag};".encode())
    (fw / "intel-ucode/06-00-01").write_bytes(f"intel-a-{tag};".encode())
    (fw / "amd-ucode").mkdir()
    (fw / "amd-ucode/microcode_amd_fam17h.bin").write_bytes(f"amd-{tag};".encode())
    (fw / "amd-ucode/README").write_text("not microcode")
    (fw / "vendor").mkdir()
    (fw / "vendor/blob.bin").write_text(tag)
    (root / "rootfs/usr/local/bin").mkdir(parents=True)
    (root / "rootfs/usr/local/bin/tool").write_text("#!/bin/sh\n")
    (root / "manifest.yaml").write_text("version: v1alpha1\n")
    return root


def test_firmware_and_microcode_leave_the_extension(tmp_path: Path) -> None:
    ext = _extension(tmp_path / "ext", "x")
    extras = tmp_path / "extras"
    split_extension_extras(ext / "rootfs", extras)
    assert not (ext / "rootfs/usr/lib/firmware").exists()
    assert (extras / "kernel/x86/microcode/GenuineIntel.bin").read_text() == "intel-a-x;intel-b-x;"
    assert (extras / "kernel/x86/microcode/AuthenticAMD.bin").read_text() == "amd-x;"
    assert (extras / "usr/lib/firmware/vendor/blob.bin").read_text() == "x"
    assert (extras / "usr/lib/firmware/amd-ucode/README").exists()
    assert not (extras / "usr/lib/firmware/intel-ucode/06-00-01").exists()


@pytest.mark.integration
def test_layers_and_early_microcode(tmp_path: Path) -> None:
    extras = []
    for n, tag in enumerate(("one", "two")):
        ext = _extension(tmp_path / f"ext{n}", tag)
        extra = tmp_path / f"extras{n}"
        extra.mkdir()
        sqsh = _layer(ext, tmp_path / f"{n}.sqsh", extra)
        assert "usr/local/bin/tool" in list_squashfs(sqsh)
        assert not any(p.startswith("usr/lib/firmware") for p in list_squashfs(sqsh))
        extras.append(extra)
    microcode = make_microcode_cpio(extras, tmp_path / "work", epoch=EPOCH)
    assert microcode is not None
    assert list_cpio(microcode) == [
        "kernel",
        "kernel/x86",
        "kernel/x86/microcode",
        "kernel/x86/microcode/AuthenticAMD.bin",
        "kernel/x86/microcode/GenuineIntel.bin",
    ]
    early = list(tmp_path.glob("work/tree/kernel/x86/microcode/GenuineIntel.bin"))
    assert [p.read_text() for p in early] == ["intel-a-one;intel-b-one;intel-a-two;intel-b-two;"]
    # Extras without microcode: no early cpio at all.
    assert make_microcode_cpio([tmp_path / "ext0"], tmp_path / "none", epoch=EPOCH) is None


def _layer(extension: Path, dest: Path, extras: Path) -> Path:
    """An unpacked extension's layer as mksquashfs makes it, its firmware moved to `extras`
    (the build makes layers from the tar: `workers.assembly.tree_layer`)."""
    split_extension_extras(extension / "rootfs", extras)
    return make_squashfs(extension / "rootfs", dest, epoch=EPOCH)
