"""The initramfs' member layout: what the kernel reads and the tree it unpacks to.

The expected tree is the one the single compressed segment gave before the layers became
members of their own: `_old_segment` packs the same inputs that way (staging tree, firmware
merged by the layer rule, one cpio, zstd), and both images are unpacked the kernel's way."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from extensions.manifest import Manifest
from extensions.sources import stage_source
from tests.initramfs import Entry, read_members, unpack
from tests.workers.assembly.old_firmware_path import (
    firmware_trees,
    make_firmware_member,
    members_agree,
)
from workers.assembly.compress import Codec, compress_file
from workers.assembly.cpio import make_cpio
from workers.assembly.extensions_yaml import LayerEntry, render_extensions_yaml
from workers.assembly.initramfs import split_extension_extras
from workers.assembly.initramfs_members import (
    file_member_pieces,
    initramfs_pieces,
    make_extensions_yaml_member,
    make_merged_firmware_member,
    make_microcode_cpio,
)
from workers.assembly.pieces import pieces_size, write_pieces_file
from workers.assembly.safetree import make_dirs, merge_tree
from workers.assembly.squashfs import make_squashfs
from workers.assembly.tree_firmware import firmware_entries, make_tree_firmware_member

EPOCH = 1700000000


def test_a_file_member_is_what_gnu_cpio_writes_for_that_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "3.sqsh").write_bytes(b"squashfs bytes, 23 long")
    gnu = make_cpio(root, tmp_path / "gnu.cpio", epoch=EPOCH).read_bytes()
    pieces = file_member_pieces("3.sqsh", root / "3.sqsh", epoch=EPOCH)
    ours = write_pieces_file(tmp_path / "ours.cpio", pieces).read_bytes()
    assert len(ours) == pieces_size(pieces)
    assert len(ours) % 4 == 0
    # GNU cpio pads the archive to its 512-byte block; the entries are the same bytes.
    assert gnu == ours + b"\0" * (len(gnu) - len(ours))


def _extension(root: Path, tag: str, firmware: dict[str, bytes | None]) -> Path:
    """An extracted extension with microcode, the given firmware (None: a directory) and a
    tool."""
    fw = root / "rootfs/usr/lib/firmware"
    (fw / "intel-ucode").mkdir(parents=True)
    (fw / "intel-ucode/06-00-01").write_bytes(f"intel-{tag};".encode())
    for rel, data in firmware.items():
        path = fw / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            path.mkdir()
            (path / "inside.bin").write_bytes(tag.encode())
        else:
            path.write_bytes(data)
    (fw / "vendor").mkdir(exist_ok=True)
    (fw / "vendor/run.sh").write_text("#!/bin/sh\n")
    (fw / "vendor/run.sh").chmod(0o755)
    (fw / "vendor/latest").symlink_to(f"blob-{tag}.bin")
    (root / "rootfs/usr/local/bin").mkdir(parents=True)
    (root / "rootfs/usr/local/bin/tool").write_text(f"#!/bin/sh\necho {tag}\n")
    (root / "manifest.yaml").write_text("version: v1alpha1\n")
    return root


def _layers(
    tmp_path: Path, firmware: list[dict[str, bytes | None]]
) -> tuple[list[LayerEntry], list[tuple[str, Path]], list[Path]]:
    entries, files, extras = [], [], []
    for n, fw in enumerate(firmware):
        tag = f"ext{n}"
        ext = _extension(tmp_path / tag, tag, fw)
        # The build's firmware member, made from the extension's tree (before `_layer`
        # moves the firmware out of the unpacked one).
        tree = stage_source(ext, tmp_path / f"spool{n}", "amd64").tree
        found = firmware_entries(tree)
        assert found is not None
        make_tree_firmware_member(found, tmp_path / f"fw{n}.zst", epoch=EPOCH)
        extra = tmp_path / f"extras{n}"
        extra.mkdir()
        files.append((f"{n}.sqsh", _layer(ext, tmp_path / f"{n}.sqsh", extra)))
        entries.append(LayerEntry(f"{n}.sqsh", Manifest(tag, "1.0.0")))
        extras.append(extra)
    return entries, files, extras


def _base(tmp_path: Path) -> bytes:
    """A zstd base initramfs (init + rootfs.sqsh) whose length is not a multiple of 4."""
    root = tmp_path / "base-tree"
    root.mkdir()
    (root / "init").write_bytes(b"#!/bin/sh\n" * 3)
    (root / "init").chmod(0o755)
    (root / "rootfs.sqsh").write_bytes(bytes(range(256)) * 7)
    raw = make_cpio(root, tmp_path / "base.cpio", epoch=EPOCH)
    for extra in range(4):
        (root / "pad").write_bytes(b"p" * extra)
        raw = make_cpio(root, tmp_path / "base.cpio", epoch=EPOCH)
        base = compress_file(raw, tmp_path / "base.zst", Codec.ZSTD).read_bytes()
        if len(base) % 4:
            return base
    raise AssertionError("no odd-length base")


def _old_segment(
    tmp_path: Path, entries: list[LayerEntry], files: list[tuple[str, Path]], extras: list[Path]
) -> tuple[Path, Path]:
    """(segment, microcode cpio) packed as before: one staging tree, one compressed cpio."""
    staging = tmp_path / "old-staging"
    staging.mkdir()
    for name, sqsh in files:
        shutil.copyfile(sqsh, staging / name)
    (staging / "extensions.yaml").write_bytes(render_extensions_yaml(entries))
    early = tmp_path / "old-early"
    early.mkdir()
    for tree in extras:
        merge_tree(tree / "usr/lib/firmware", make_dirs(staging, "usr/lib/firmware"))
        microcode = make_dirs(early, "kernel/x86/microcode")
        for part in sorted((tree / "kernel/x86/microcode").iterdir()):
            with (microcode / part.name).open("ab") as out:
                out.write(part.read_bytes())
    raw = make_cpio(staging, tmp_path / "old-segment.cpio", epoch=EPOCH)
    segment = compress_file(raw, tmp_path / "old-segment.cpio.zst", Codec.ZSTD)
    return segment, make_cpio(early, tmp_path / "old-microcode.cpio", epoch=EPOCH)


def _old_tree(
    tmp_path: Path,
    base: bytes,
    entries: list[LayerEntry],
    files: list[tuple[str, Path]],
    extras: list[Path],
) -> dict[str, Entry]:
    segment, microcode = _old_segment(tmp_path, entries, files, extras)
    return unpack(read_members(microcode.read_bytes() + base + segment.read_bytes()))


def _copies(extras: list[Path], dest: Path) -> list[Path]:
    """Copies of the extras directories (building members moves their firmware away)."""
    copies = []
    for n, tree in enumerate(extras):
        shutil.copytree(tree, dest / str(n), symlinks=True)
        copies.append(dest / str(n))
    return copies


# Both extensions ship vendor/blob.bin (the later one wins) and vendor/latest (a link each).
OVERLAPPING: list[dict[str, bytes | None]] = [
    {"vendor/blob.bin": b"one", "vendor/blob-ext0.bin": b"0", "only-0/a.bin": b"a"},
    {"vendor/blob.bin": b"two", "vendor/blob-ext1.bin": b"1", "only-1/b.bin": b"b"},
]


@pytest.mark.integration
def test_members_unpack_to_the_tree_the_single_segment_gave(tmp_path: Path) -> None:
    entries, files, extras = _layers(tmp_path, OVERLAPPING)
    modules = tmp_path / "modules.dep.sqsh"
    modules.write_bytes(b"module layer, 25 bytes...")
    entries.append(LayerEntry("modules.dep.sqsh", Manifest("modules.dep", "6.1")))
    files.append(("modules.dep.sqsh", modules))
    base = _base(tmp_path)
    (tmp_path / "base.initramfs").write_bytes(base)
    expected = _old_tree(tmp_path, base, entries, files, _copies(extras, tmp_path / "old"))

    assert members_agree(firmware_trees(extras))
    microcode = make_microcode_cpio(extras, tmp_path / "microcode", epoch=EPOCH)
    assert microcode is not None
    tail = [make_extensions_yaml_member(entries, tmp_path / "yaml", epoch=EPOCH)]
    # The members the build makes from the extensions' trees (`_layers`); GNU cpio's of the
    # moved firmware unpack to the same tree.
    tail += [tmp_path / f"fw{n}.zst" for n in range(len(extras))]
    assert [unpack(read_members(m.read_bytes())) for m in tail[1:]] == [
        unpack(
            read_members(make_firmware_member(tree, tmp_path / f"gnu{n}", epoch=EPOCH).read_bytes())
        )
        for n, tree in enumerate(extras)
    ]
    pieces = initramfs_pieces(
        microcode=microcode,
        base=tmp_path / "base.initramfs",
        layers=files,
        tail=tail,
        epoch=EPOCH,
    )
    image = write_pieces_file(tmp_path / "initramfs.xz", pieces).read_bytes()
    assert len(image) == pieces_size(pieces)

    members = read_members(image)
    assert [(m.kind, [e.name for e in m.entries]) for m in members] == [
        (
            "raw",
            [
                "kernel",
                "kernel/x86",
                "kernel/x86/microcode",
                "kernel/x86/microcode/GenuineIntel.bin",
            ],
        ),
        ("zstd", ["init", "pad", "rootfs.sqsh"]),
        ("raw", ["0.sqsh"]),
        ("raw", ["1.sqsh"]),
        ("raw", ["modules.dep.sqsh"]),
        ("zstd", ["extensions.yaml"]),
        ("zstd", [e.name for e in members[6].entries]),
        ("zstd", [e.name for e in members[7].entries]),
    ]
    # The microcode cpio first, then the base byte for byte, then the layers, each on its own.
    assert image.startswith(microcode.read_bytes() + base)
    assert members[1].offset == len(microcode.read_bytes())
    assert members[2].offset % 4 == 0
    assert members[2].offset - members[1].offset - len(base) < 4
    for member, (_, sqsh) in zip(members[2:5], files, strict=True):
        assert member.entries[0].data == sqsh.read_bytes()
    assert "usr/lib/firmware/only-0/a.bin" in [e.name for e in members[6].entries]
    assert "usr/lib/firmware/only-1/b.bin" in [e.name for e in members[7].entries]
    assert members[7].offset + members[7].size == len(image)

    got = unpack(members)
    assert got == expected
    assert got["usr/lib/firmware/vendor/blob.bin"].data == b"two"
    assert got["usr/lib/firmware/vendor/run.sh"].mode == stat.S_IFREG | 0o755
    assert got["kernel/x86/microcode/GenuineIntel.bin"].data == b"intel-ext0;intel-ext1;"


@pytest.mark.integration
@pytest.mark.parametrize(
    "later",
    [
        {"vendor/blob.bin": None},  # a directory where the earlier extension has a file
        {"only-0": b"a file where the earlier extension has a directory"},
    ],
)
def test_firmware_that_would_unpack_differently_is_merged_into_one_member(
    tmp_path: Path, later: dict[str, bytes | None]
) -> None:
    entries, files, extras = _layers(tmp_path, [OVERLAPPING[0], later])
    base = _base(tmp_path)
    (tmp_path / "base.initramfs").write_bytes(base)
    expected = _old_tree(tmp_path, base, entries, files, _copies(extras, tmp_path / "old"))

    assert not members_agree(firmware_trees(extras))
    pieces = initramfs_pieces(
        microcode=make_microcode_cpio(extras, tmp_path / "microcode", epoch=EPOCH),
        base=tmp_path / "base.initramfs",
        layers=files,
        tail=[
            make_extensions_yaml_member(entries, tmp_path / "yaml", epoch=EPOCH),
            make_merged_firmware_member(extras, tmp_path / "merged", epoch=EPOCH),
        ],
        epoch=EPOCH,
    )
    image = write_pieces_file(tmp_path / "initramfs.xz", pieces).read_bytes()
    members = read_members(image)
    assert [m.kind for m in members] == ["raw", "zstd", "raw", "raw", "zstd", "zstd"]
    assert unpack(members) == expected


def _layer(extension: Path, dest: Path, extras: Path) -> Path:
    """An unpacked extension's layer as mksquashfs makes it, its firmware moved to `extras`
    (the build makes layers from the tar: `workers.assembly.tree_layer`)."""
    split_extension_extras(extension / "rootfs", extras)
    return make_squashfs(extension / "rootfs", dest, epoch=EPOCH)
