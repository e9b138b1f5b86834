"""`carries_cpu_microcode` (recorded when an extension enters the catalog) says exactly what
assembly does: early microcode in front of the initramfs iff it is true."""

from __future__ import annotations

from pathlib import Path

import pytest

from extensions.package import extract_extension, pack_extension
from workers.assembly.initramfs import MICROCODE_ROOT, split_extension_extras

MANIFEST = (
    "version: v1alpha1\nmetadata:\n  name: ucode\n  version: 1.0.0\n  author: test\n"
    '  description: microcode or not\n  compatibility:\n    talos:\n      version: ">= v1.0.0"\n'
)
FIRMWARE = "usr/lib/firmware"


@pytest.mark.parametrize(
    ("files", "links", "expected"),
    [
        ({f"{FIRMWARE}/intel-ucode/06-55-04": b"i"}, {}, True),
        ({f"{FIRMWARE}/amd-ucode/microcode_amd_fam17h.bin": b"a"}, {}, True),
        ({f"{FIRMWARE}/amd-ucode/README": b"r"}, {}, False),
        ({f"{FIRMWARE}/intel-ucode/sub/06-55-04": b"i"}, {}, False),
        (
            {f"{FIRMWARE}/vendor/blob.bin": b"b"},
            {f"{FIRMWARE}/intel-ucode/06": "../vendor/blob.bin"},
            False,
        ),
        ({f"{FIRMWARE}/vendor/blob.bin": b"b"}, {}, False),
        ({"usr/local/bin/tool": b"t"}, {}, False),
    ],
)
def test_the_record_says_what_assembly_finds(
    tmp_path: Path, files: dict[str, bytes], links: dict[str, str], expected: bool
) -> None:
    source = tmp_path / "source"
    (source / "rootfs").mkdir(parents=True)
    (source / "manifest.yaml").write_text(MANIFEST)
    for rel, data in files.items():
        (source / "rootfs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / "rootfs" / rel).write_bytes(data)
    for rel, target in links.items():
        (source / "rootfs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / "rootfs" / rel).symlink_to(target)
    packed = pack_extension(source, tmp_path / "ext.tar", epoch=0)
    assert packed.cpu_microcode is expected
    extract_extension(packed.tar.path, tmp_path / "extracted")
    extras = tmp_path / "extras"
    split_extension_extras(tmp_path / "extracted" / "rootfs", extras)
    assert (extras / MICROCODE_ROOT).is_dir() is expected
