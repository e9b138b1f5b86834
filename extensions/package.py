"""Extensions end to end: any accepted source → validated canonical tar, and back to files.

`pack_extension` stages the source (bounded), validates it and writes the canonical tar
whose sha256 is the extension digest; `extract_extension` re-validates a tar (ours or not)
and materialises it without ever following a link or writing outside `dest`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from extensions.canonical import (
    CanonicalTar,
    canonical_entries,
    normalise_mode,
    write_canonical_tar,
)
from extensions.limits import DEFAULT_LIMITS, Limits
from extensions.manifest import Manifest
from extensions.microcode import carries_cpu_microcode
from extensions.sources import stage_archive, stage_source
from extensions.tree import Tree
from extensions.validate import validate_extension_tree


@dataclass(frozen=True)
class PackedExtension:
    manifest: Manifest
    tar: CanonicalTar
    platform: str  # "linux/<arch>" if read from an OCI image layout, else ""
    kernel_versions: tuple[str, ...]  # the <kver> directories under rootfs/usr/lib/modules
    cpu_microcode: bool  # early CPU microcode that assembly puts in front of the initramfs


def module_kernel_versions(tree: Tree) -> tuple[str, ...]:
    """Kernel versions the extension carries modules (or module data) for."""
    found = set()
    for path in tree.entries:
        parts = path.split("/")
        if parts[:4] == ["rootfs", "usr", "lib", "modules"] and len(parts) >= 6:
            found.add(parts[4])
    return tuple(sorted(found))


def pack_extension(
    source: Path,
    dest: Path,
    *,
    epoch: int,
    arch: str = "amd64",
    label: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> PackedExtension:
    """Validate `source` and write its canonical tar to `dest` (nothing written on error)."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as spool:
        staged = stage_source(source, Path(spool), arch, label, limits)
        manifest = validate_extension_tree(staged.tree)
        try:
            tar = write_canonical_tar(staged.tree, dest, epoch)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        kernels = module_kernel_versions(staged.tree)
        microcode = carries_cpu_microcode(staged.tree)
    return PackedExtension(manifest, tar, staged.platform, kernels, microcode)


def materialise(tree: Tree, dest: Path, paths: Collection[str] | None = None) -> None:
    """Write a validated tree (or only its `paths`, parents included) into the empty
    directory `dest` with canonical modes.

    Parents are created by us before their children (canonical order), symlinks are created
    but never followed, files are opened with O_EXCL|O_NOFOLLOW.
    """
    for path, entry in canonical_entries(tree):
        if paths is not None and path not in paths:
            continue
        target = dest / path
        mode = normalise_mode(entry)
        if entry.kind == "dir":
            target.mkdir(mode=mode)
            os.chmod(target, mode)
        elif entry.kind == "symlink":
            os.symlink(entry.target, target)
        else:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out, entry.open() as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.chmod(target, mode)


def unpack_tar(
    tar: Path,
    dest: Path,
    pick: Callable[[Tree], Collection[str]] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> None:
    """Unpack the (possibly compressed) tar `tar` into the empty directory `dest`, safely
    without `tarfile`'s extraction filters (which Debian 12's Python lacks): the same reader
    and writer as `extract_extension` (names stay beneath `dest`, links are created as links
    and never followed, files are created O_EXCL|O_NOFOLLOW, canonical modes), without the
    extension rules. `pick` chooses, from the staged tree, the paths to write (parents
    included); all when None."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as spool:
        tree = stage_archive(tar, tar.name, Path(spool), limits, in_place=True)
        tree.check_parents()
        materialise(tree, dest, None if pick is None else set(pick(tree)))


@contextlib.contextmanager
def read_extension(
    tar: Path, workdir: Path, limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[Manifest, Tree]]:
    """Validate the extension tar `tar` and yield its manifest and tree, whose files are read
    in place from `tar` (which must not change meanwhile): nothing is unpacked. Its scratch
    space, if it needs any, lives under the existing directory `workdir` until the body
    ends (one per thread: not made at all for most tars, whose files all stay in place)."""
    spool = workdir / f".stage-{os.getpid()}-{threading.get_ident()}"
    try:
        tree = stage_archive(tar, tar.name, spool, limits, in_place=True)
        yield validate_extension_tree(tree), tree
    finally:
        if spool.exists():
            shutil.rmtree(spool)


def extract_extension(tar: Path, dest: Path, limits: Limits = DEFAULT_LIMITS) -> Manifest:
    """Validate the extension tar `tar` and unpack it into the new directory `dest`.

    `dest` gets `manifest.yaml` and `rootfs/`. ExtensionError (and nothing left behind in
    `dest`) if the tar is not a valid extension.
    """
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as spool:
        # Read in place: the payload is written once, into `dest`, not to a spool first.
        tree = stage_archive(tar, tar.name, Path(spool), limits, in_place=True)
        manifest = validate_extension_tree(tree)
        dest.mkdir(parents=True, exist_ok=False)
        try:
            materialise(tree, dest)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return manifest
