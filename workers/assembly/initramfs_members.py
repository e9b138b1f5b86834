"""The cpio members an initramfs with extensions is made of, and their concatenation.

Byte layout (talos-formats §2.6, packed differently, same unpacked tree):

    [uncompressed newc cpio with kernel/x86/microcode/*.bin, when an extension brings any]
    ‖ the release's base initramfs, copied as is
    ‖ NUL bytes up to a 4-byte boundary
    ‖ one uncompressed newc cpio per SquashFS layer (`N.sqsh` in layer order,
      `modules.dep.sqsh` last), each just that file and its trailer
    ‖ a compressed newc cpio with `extensions.yaml`
    ‖ the firmware: one compressed newc cpio per extension that has some (in layer order),
      or one merged member when the kernel's unpacking and the layer rule could disagree

Why the kernel unpacks this to the same tree as one compressed segment did (Linux
`init/initramfs.c`, `Documentation/driver-api/early-userspace/buffer-format.rst`): the
initramfs is any sequence of NUL bytes, uncompressed newc archives starting at a 4-byte
aligned offset of the whole image, and compressed archives; every archive is unpacked into
the same root in turn. A later regular file or link replaces an earlier file or link at its
path (the kernel removes what is there, then creates it: `clean_path`, `O_TRUNC`), and a
directory entry of an existing directory only sets its mode again. The layers are SquashFS,
compressed already: stored raw, they cost no compression and are written straight from the
cached layer file. Firmware is compressed once per extension, ever (its member is cached with
the extension), and shared by every schematic using it. The early-microcode loader reads only
the first uncompressed archive, which is why the microcode stays first.

Where the firmware of two extensions has a directory at a path where the other has a file or
link (or anything the layer rule of `workers.assembly.safetree` treats differently from the
kernel: other file types, hard links), the firmware is merged by that rule into one member
instead, as the single segment had it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from workers.assembly.compress import EXTENSION_ZSTD_LEVEL, Codec, compress_file
from workers.assembly.cpio import NEWC_MAGIC, make_cpio
from workers.assembly.extensions_yaml import LayerEntry, render_extensions_yaml
from workers.assembly.initramfs import FIRMWARE_ROOT, MICROCODE_ROOT
from workers.assembly.pieces import Piece, pieces_size
from workers.assembly.safetree import is_real_dir, make_dirs, merge_tree, read_file

EXTENSIONS_YAML = "extensions.yaml"

_TRAILER = "TRAILER!!!"
# A layer file as GNU cpio records it after `normalize_tree`: a regular file, 0644.
_LAYER_MODE = stat.S_IFREG | 0o644


def newc_header(name: str, *, mode: int, size: int, mtime: int) -> bytes:
    """The newc header of one entry, its name and the NULs that align what follows, with the
    fields GNU cpio `--reproducible --owner=0:0` writes for the first entry of an archive
    (inode 0, owner 0:0, one link, device numbers 0, no checksum)."""
    encoded = os.fsencode(name) + b"\0"
    fields = (0, mode, 0, 0, 1, mtime, size, 0, 0, 0, 0, len(encoded), 0)
    header = NEWC_MAGIC + b"".join(b"%08X" % value for value in fields) + encoded
    return header + b"\0" * (-len(header) % 4)


def file_member_pieces(name: str, source: Path, *, epoch: int) -> list[Piece]:
    """An uncompressed newc archive holding only the regular file `source` as `name` (mode
    0644, dated `epoch`), as pieces: `source` is read when they are written. It must start at a
    4-byte aligned offset of the initramfs; it ends at one."""
    size = source.stat().st_size
    return [
        newc_header(name, mode=_LAYER_MODE, size=size, mtime=epoch),
        source,
        b"\0" * (-size % 4) + newc_header(_TRAILER, mode=0, size=0, mtime=0),
    ]


def make_extensions_yaml_member(layers: Sequence[LayerEntry], workdir: Path, *, epoch: int) -> Path:
    """The compressed member holding `extensions.yaml` (`workdir` must not exist)."""
    root = workdir / "tree"
    root.mkdir(parents=True)
    (root / EXTENSIONS_YAML).write_bytes(render_extensions_yaml(list(layers)))
    return _compressed_cpio(root, workdir / "extensions.cpio", epoch=epoch)


def make_merged_firmware_member(extras: Sequence[Path], workdir: Path, *, epoch: int) -> Path:
    """One compressed member with the firmware of every extras directory, merged in layer
    order by the layer rule (`safetree.merge_tree`); `workdir` must not exist."""
    root = workdir / "tree"
    root.mkdir(parents=True)
    firmware = make_dirs(root, FIRMWARE_ROOT)
    for tree in extras:
        merge_tree(tree / FIRMWARE_ROOT, firmware)
    return _compressed_cpio(
        root, workdir / "firmware.cpio", epoch=epoch, level=EXTENSION_ZSTD_LEVEL
    )


def make_microcode_cpio(extras: Sequence[Path], workdir: Path, *, epoch: int) -> Path | None:
    """The uncompressed early cpio: each vendor's microcode of every extras directory,
    concatenated in layer order; None when there is none. `workdir` must not exist."""
    root = workdir / "tree"
    found = False
    for tree in extras:
        if not is_real_dir(tree, MICROCODE_ROOT):
            continue
        found = True
        root.mkdir(parents=True, exist_ok=True)
        microcode = make_dirs(root, MICROCODE_ROOT)
        for name in sorted(os.listdir(tree / MICROCODE_ROOT)):
            with (microcode / name).open("ab") as out:
                out.write(read_file(tree / MICROCODE_ROOT / name))
    if not found:
        return None
    return make_cpio(root, workdir / "microcode.cpio", epoch=epoch)


def listings_agree(listings: Sequence[Mapping[str, bool] | None]) -> bool:
    """Whether one member per firmware listing, unpacked in turn, gives the layer rule's
    tree: every listing is known and no path is a directory in one and something else in
    another."""
    seen: dict[str, bool] = {}  # path → is a directory
    for listing in listings:
        if listing is None:
            return False
        for rel, is_dir in listing.items():
            if seen.setdefault(rel, is_dir) != is_dir:
                return False
    return True


def initramfs_pieces(
    *,
    microcode: Path | None,
    base: Path,
    layers: Sequence[tuple[str, Path]],
    tail: Sequence[Path],
    epoch: int,
) -> list[Piece]:
    """The initramfs (module docstring) as pieces (`workers.assembly.pieces`): its size is
    known before it is written, and it is written straight from the members' files. `layers`
    are (name, SquashFS file) in order, `tail` the compressed members."""
    pieces: list[Piece] = [part for part in (microcode, base) if part is not None]
    pieces.append(b"\0" * (-pieces_size(pieces) % 4))
    for name, sqsh in layers:
        pieces += file_member_pieces(name, sqsh, epoch=epoch)
    pieces += tail
    return pieces


def _compressed_cpio(root: Path, raw: Path, *, epoch: int, level: int | None = None) -> Path:
    make_cpio(root, raw, epoch=epoch)
    member = compress_file(raw, raw.with_name(raw.name + ".zst"), Codec.ZSTD, level=level)
    raw.unlink()
    return member
