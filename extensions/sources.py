"""Reading a source of any accepted container format into a staged tree.

Accepted: a directory, a tar (plain, gzip or zstd, decided by magic bytes, never by name),
or an OCI image layout, as a directory or as a tar of one (recognised by its `oci-layout`
and `index.json`). Whatever the container, the same content stages to the same tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from extensions.budget import Budget
from extensions.compression import BoundedStream
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS, Limits
from extensions.oci import flatten_oci, is_oci_layout
from extensions.tarstream import TarReader
from extensions.tree import Tree


def stage_archive(
    path: Path, label: str, spool: Path, limits: Limits, in_place: bool = False
) -> Tree:
    """Stage a (possibly compressed) tar file as-is (no OCI interpretation).

    `in_place`: file contents of an uncompressed tar stay in `path` (which must then not
    change while the tree is in use) instead of being copied to the spool.
    """
    tree = Tree(spool, label, Budget(limits, label), archive=path if in_place else None)
    with path.open("rb") as raw:
        stream = BoundedStream(raw, label, tree.budget)
        tree.apply(tree.read_tar(TarReader(stream, label, tree.budget), whiteouts=False))
    return tree


@dataclass(frozen=True)
class Staged:
    tree: Tree
    platform: str  # "linux/<arch>" when the source was an OCI image layout, else ""


def stage_source(
    source: Path, spool: Path, arch: str, label: str = "", limits: Limits = DEFAULT_LIMITS
) -> Staged:
    """Stage `source` (directory, tar, tar.gz, tar.zst, OCI layout dir or tar) as a tree.

    OCI layouts are flattened for `linux/<arch>`. ExtensionError on anything malformed.
    """
    label = label or source.name or str(source)
    if source.is_dir():
        tree = Tree(spool, label, Budget(limits, label))
        tree.apply(tree.read_dir(source))
    elif source.is_file():
        tree = stage_archive(source, label, spool, limits)
    else:
        raise ExtensionError(f"{label}: not a file or directory")
    if is_oci_layout(tree):
        return Staged(flatten_oci(tree, arch, spool), f"linux/{arch}")
    return Staged(tree, "")
