"""Initramfs assembly steps on tiny trees: layer order, firmware and microcode, the segment.
The module layer and booting are tested with the reference release elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from extensions.manifest import Manifest
from workers.assembly.compress import decompress_file
from workers.assembly.cpio import list_cpio
from workers.assembly.extensions_yaml import LayerEntry
from workers.assembly.initramfs import (
    concat_initramfs,
    layer_order,
    make_extension_layer,
    make_segment,
    split_extension_extras,
    write_segment_tree,
)
from workers.assembly.squashfs import list_squashfs

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
def test_segment_and_early_microcode(tmp_path: Path) -> None:
    layers = []
    extras = []
    for n, tag in enumerate(("one", "two")):
        ext = _extension(tmp_path / f"ext{n}", tag)
        extra = tmp_path / f"extras{n}"
        extra.mkdir()
        sqsh = make_extension_layer(ext, tmp_path / f"{n}.sqsh", extra, epoch=EPOCH)
        assert "usr/local/bin/tool" in list_squashfs(sqsh)
        assert not any(p.startswith("usr/lib/firmware") for p in list_squashfs(sqsh))
        layers.append((LayerEntry(f"{n}.sqsh", Manifest(tag, "1.0.0")), sqsh))
        extras.append(extra)
    staging = write_segment_tree(tmp_path / "staging", layers, extras)
    work = tmp_path / "work"
    work.mkdir()
    segment, microcode = make_segment(staging, work, epoch=EPOCH)
    assert microcode is not None
    assert list_cpio(microcode) == [
        "kernel",
        "kernel/x86",
        "kernel/x86/microcode",
        "kernel/x86/microcode/AuthenticAMD.bin",
        "kernel/x86/microcode/GenuineIntel.bin",
    ]
    early = list(work.glob("early/kernel/x86/microcode/GenuineIntel.bin"))
    assert [p.read_text() for p in early] == ["intel-a-one;intel-b-one;intel-a-two;intel-b-two;"]
    assert segment.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    names = list_cpio(decompress_file(segment, tmp_path / "segment.cpio"))
    assert names[:3] == ["0.sqsh", "1.sqsh", "extensions.yaml"]
    assert "usr/lib/firmware/vendor/blob.bin" in names
    assert not any(name.startswith("kernel") for name in names)
    # Both extensions ship vendor/blob.bin: the later layer's copy wins.
    assert (staging / "usr/lib/firmware/vendor/blob.bin").read_text() == "two"

    base = tmp_path / "base"
    base.write_bytes(b"BASE")
    whole = concat_initramfs(tmp_path / "initramfs.xz", base, segment, microcode)
    data = whole.read_bytes()
    assert data.startswith(microcode.read_bytes() + b"BASE")
    assert data.endswith(segment.read_bytes())
