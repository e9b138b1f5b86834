from __future__ import annotations

import re
from pathlib import Path

import pytest

from extensions.bundled import CATALOG_DIR
from extensions.errors import ExtensionError
from extensions.overlay import (
    check_raw_layout,
    pack_overlay,
    parse_overlay_manifest,
    prepare_overlay,
)
from tests.extensions.builders import Member, directory, file, symlink, tar_bytes, write, zst

EPOCH = 1700000000
TESTBOARD = CATALOG_DIR / "overlays" / "testboard"
MANIFEST = b"""version: v1alpha1
metadata:
  name: board
  version: 1.0.0
  description: d
  compatibility: ">= 1.0.0"
kernelArgs: [console=ttyS0]
partitionOffset: 64
rawWrite: {file: boot.bin, offset: 0x8000}
templates:
  config.txt: {replaceOption: configTxt, appendOption: configTxtAppend}
"""


def members(*extra: Member, body: bytes = MANIFEST) -> list[Member]:
    return [
        file("manifest.yaml", body),
        directory("esp"),
        file("esp/dtb/board.dtb", b"dtb"),
        file("templates/config.txt", b"kernel=u-boot.bin\narm_64bit=1\n"),
        file("raw/boot.bin", b"UBOOT" * 100),
        *extra,
    ]


def pack(tmp_path: Path, data: bytes) -> Path:
    dest = tmp_path / "overlay.tar"
    pack_overlay(write(tmp_path / "src", data), dest, epoch=EPOCH)
    return dest


def test_bundled_testboard_packs_and_prepares(tmp_path: Path) -> None:
    packed = pack_overlay(TESTBOARD, tmp_path / "tb.tar", epoch=EPOCH)
    m = packed.manifest
    assert (m.name, m.kernel_args, m.partition_offset) == (
        "testboard",
        ("factory.board=testboard",),
        128,
    )
    assert m.raw_write is not None
    assert m.raw_write.offset == 0x8000
    prepared = prepare_overlay(
        tmp_path / "tb.tar", {"configTxtAppend": "dtoverlay=extra"}, tmp_path / "prepared"
    )
    config = (prepared.esp_dir / "config.txt").read_text()
    assert config.startswith("# testboard boot configuration")
    assert config.endswith("board=testboard\nconsole=serial0\ndtoverlay=extra\n")
    assert (prepared.esp_dir / "testboard" / "README.txt").is_file()
    assert prepared.raw_file is not None
    assert prepared.raw_file.read_bytes() == (TESTBOARD / "raw" / "marker.bin").read_bytes()
    assert (prepared.raw_offset, prepared.partition_offset) == (0x8000, 128)


def test_same_overlay_same_digest_in_any_container(tmp_path: Path) -> None:
    data = tar_bytes(members())
    a = pack_overlay(write(tmp_path / "a", data), tmp_path / "a.tar", epoch=EPOCH)
    b = pack_overlay(write(tmp_path / "b", zst(data)), tmp_path / "b.tar", epoch=EPOCH)
    assert a.tar.digest == b.tar.digest
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ({}, "kernel=u-boot.bin\narm_64bit=1\n"),
        ({"configTxt": "only=this"}, "only=this\n"),
        ({"configTxtAppend": "gpu_mem=32"}, "kernel=u-boot.bin\narm_64bit=1\ngpu_mem=32\n"),
        ({"configTxt": "a=1\n", "configTxtAppend": "b=2"}, "a=1\nb=2\n"),
        ({"configTxt": "{{ 7*7 }} ${HOME} %(x)s"}, "{{ 7*7 }} ${HOME} %(x)s\n"),  # no evaluation
    ],
)
def test_template_rendering(tmp_path: Path, options: dict[str, object], config: str) -> None:
    prepared = prepare_overlay(pack(tmp_path, tar_bytes(members())), options, tmp_path / "p")
    assert (prepared.esp_dir / "config.txt").read_text() == config
    assert (prepared.esp_dir / "dtb" / "board.dtb").read_bytes() == b"dtb"
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["esp", "raw.bin"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bogus": "x"}, 'unknown option "bogus" (known: configTxt, configTxtAppend)'),
        ({"configTxt": ["a"]}, 'option "configTxt" must be a string'),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, object], message: str) -> None:
    tar = pack(tmp_path, tar_bytes(members()))
    with pytest.raises(ExtensionError, match=re.escape(message)):
        prepare_overlay(tar, options, tmp_path / "p")


@pytest.mark.parametrize(
    ("extra", "body", "message"),
    [
        ((file("boot/x", b"x"),), MANIFEST, "unexpected file boot/x"),
        ((symlink("esp/link", "dtb"),), MANIFEST, "esp/link: symlinks are not allowed"),
        ((file("esp/EFI/BOOT/BOOTX64.EFI", b"x"),), MANIFEST, "replace the bootloader's ESP"),
        ((file("esp/loader/loader.conf", b"x"),), MANIFEST, "replace the bootloader's ESP"),
        ((file("esp/CONFIG.TXT", b"x"),), MANIFEST, "clashes with esp/CONFIG.TXT"),
        ((file("esp/a:b", b"x"),), MANIFEST, "names may only use"),
        ((file("esp/w", b"x", 0o666),), MANIFEST, "esp/w: world-writable"),
        ((file("raw/other.bin", b"x"),), MANIFEST, "unexpected file raw/other.bin"),
        ((file("templates/extra.txt", b"x"),), MANIFEST, "templates/extra.txt is not declared"),
        ((file("../x", b"x"),), MANIFEST, '".." components'),
        ((), MANIFEST.replace(b"offset: 0x8000", b"offset: 0x200"), "overlaps the protective MBR"),
        (
            (),
            MANIFEST.replace(b"partitionOffset: 64", b"partitionOffset: 0").replace(
                b"0x8000", b"0x1000"
            ),
            "overlaps the GPT entry array",
        ),
        ((), MANIFEST.replace(b"offset: 0x8000", b"offset: 0xFFFFF"), "runs into the first"),
        ((), MANIFEST.replace(b"boot.bin", b"missing.bin"), "raw/missing.bin is missing"),
        ((), MANIFEST.replace(b"v1alpha1", b"v2"), 'unsupported "v2"'),
        (
            (),
            MANIFEST.replace(b"kernelArgs: [console=ttyS0]", b"kernelArgs: ['a b']"),
            "kernelArgs[0]",
        ),
        ((), MANIFEST.replace(b"partitionOffset: 64", b"partitionOffset: lots"), "not an integer"),
        ((), MANIFEST + b"installer: x\n", 'unknown field "installer"'),
    ],
)
def test_hostile_overlays(
    tmp_path: Path, extra: tuple[Member, ...], body: bytes, message: str
) -> None:
    with pytest.raises(ExtensionError, match=re.escape(message)):
        pack(tmp_path, tar_bytes(members(*extra, body=body)))
    assert not (tmp_path / "overlay.tar").exists()


def test_missing_declared_template(tmp_path: Path) -> None:
    items = [m for m in members() if not m.name.startswith("templates/")]
    with pytest.raises(ExtensionError, match=r"templates/config\.txt is missing"):
        pack(tmp_path, tar_bytes(items))


def test_raw_layout_for_4k_sectors() -> None:
    check_raw_layout(0x8000, 4096, 128, 512)
    with pytest.raises(ExtensionError, match="overlaps the protective MBR or GPT header"):
        check_raw_layout(0x1000, 4096, 64, 4096)  # LBA 1 of a 4K disk is bytes 4096..8191
    check_raw_layout(0x8000 * 4, 4096, 64, 4096)


def test_manifest_defaults() -> None:
    m = parse_overlay_manifest(b"version: v1alpha1\nmetadata: {name: b, version: '1'}\n")
    assert (m.kernel_args, m.partition_offset, m.raw_write, m.templates) == ((), 0, None, ())
    assert m.option_names == ()
