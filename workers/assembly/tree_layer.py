"""An extension's SquashFS layer straight from its validated tar: nothing is unpacked.

The extension's tree (`extensions.package.read_extension`: validated, its files read in place
from the tar) is written as a clean tar stream — only `rootfs/`, the prefix stripped, the
firmware tree left out (it goes into the initramfs unpacked, see
`workers.assembly.initramfs`), owners 0:0, canonical modes, every time the epoch — into a
named pipe that `tar2sqfs` (squashfs-tools-ng) reads in the build's sandbox. tar2sqfs stores
a link as the link it is (data, never followed) and writes only the image.

The image holds the same tree `mksquashfs -all-root -all-time <epoch>` made of the unpacked
`rootfs/` (entries, modes, owners, times, link targets, file contents: `unsquashfs -lln`
lists both alike); its bytes differ, so the layer cache key names this tool.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import BinaryIO

from extensions.canonical import canonical_entries, write_entries
from extensions.tree import Entry, Tree
from workers.assembly.compress import EXTENSION_ZSTD_LEVEL
from workers.assembly.fifo import fed_fifo
from workers.assembly.run import run_tool

ROOTFS = "rootfs"
FIRMWARE = "rootfs/usr/lib/firmware"
# mksquashfs' default, which the layers had before.
BLOCK_SIZE = 131072
# Up to this many blocks of file data, one compressor thread: zstd contexts are slow to
# set up, and a tiny layer has next to nothing to share out.
SMALL_LAYER_BLOCKS = 4


def layer_entries(tree: Tree) -> list[tuple[str, Entry]]:
    """The layer's entries: `rootfs/` as the root (`.`), parents first, without the firmware
    tree when `usr/lib/firmware` is a directory (a link there stays: it is data)."""
    firmware = tree.entries.get(FIRMWARE)
    skip = FIRMWARE if firmware is not None and firmware.kind == "dir" else None
    picked = []
    for path, entry in canonical_entries(tree):
        if skip is not None and (path == skip or path.startswith(skip + "/")):
            continue
        if path == ROOTFS:
            picked.append((".", entry))
        elif path.startswith(ROOTFS + "/"):
            picked.append((path.removeprefix(ROOTFS + "/"), entry))
    if not picked or picked[0][0] != ".":
        picked.insert(0, (".", Entry("dir", 0o755)))
    return picked


def firmware_paths(tree: Tree) -> set[str]:
    """The tree's paths of the firmware tree and their parents (empty when
    `usr/lib/firmware` is not a directory): what must be unpacked for the firmware."""
    firmware = tree.entries.get(FIRMWARE)
    if firmware is None or firmware.kind != "dir":
        return set()
    # Implied directories too (parents of entries the tar did not list).
    found = {path for path, _ in canonical_entries(tree) if path.startswith(FIRMWARE + "/")}
    return found | {"rootfs", "rootfs/usr", "rootfs/usr/lib", FIRMWARE}


def is_tree_dir(tree: Tree, path: str) -> bool:
    """Whether `path` of the validated `tree` is a directory, listed or implied by an entry
    below it (`check_parents` made every listed parent a directory)."""
    entry = tree.entries.get(path)
    if entry is not None:
        return entry.kind == "dir"
    return any(other.startswith(path + "/") for other in tree.entries)


def make_tree_layer(
    tree: Tree,
    dest: Path,
    *,
    epoch: int,
    level: int = EXTENSION_ZSTD_LEVEL,
    jobs: int | None = None,
) -> Path:
    """The SquashFS layer of the extension `tree` (module docstring) in the new file `dest`;
    the named pipe tar2sqfs reads lives beside it for the run. `jobs`: compressor threads,
    every core by default (like mksquashfs) but one for a layer of a few blocks (starting
    more costs more than they save); the image's bytes do not depend on them."""
    entries = layer_entries(tree)
    if jobs is None:
        data = sum(entry.size for _, entry in entries if entry.kind == "file")
        jobs = 1 if data <= SMALL_LAYER_BLOCKS * BLOCK_SIZE else os.cpu_count() or 1

    def write(out: BinaryIO) -> None:
        write_entries(out, entries, epoch)

    with fed_fifo(dest.with_name(dest.name + ".tar-pipe"), write) as pipe:
        run_tool(
            [
                "tar2sqfs",
                "--quiet",
                "--no-skip",
                "--no-xattr",
                "--compressor",
                "zstd",
                "--comp-extra",
                f"level={level}",
                "--block-size",
                str(BLOCK_SIZE),
                "--num-jobs",
                str(jobs),
                "--defaults",
                f"uid=0,gid=0,mode=0755,mtime={epoch}",
                dest,
            ],
            stdin=pipe,
            source_date_epoch=epoch,
        )
    return dest


_version_lock = threading.Lock()


def tar2sqfs_version() -> str:
    """The first line of `tar2sqfs --version`; part of every extension layer's cache key.
    Asked once per process, even when several layer threads want it first."""
    with _version_lock:
        return _tar2sqfs_version()


@functools.cache
def _tar2sqfs_version() -> str:
    return run_tool(["tar2sqfs", "--version"]).decode().splitlines()[0].strip()
