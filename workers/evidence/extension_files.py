"""What an extension contributes to a build's evidence: its manifest's author and extra info,
and every file it installs with its digests. That depends on the extension's bytes alone, so
it is read once per extension digest — by the layer stage, which holds the verified tar
anyway, or by the evidence step when no one has yet — and kept in the shared layer cache
(`layers/extension-evidence/<k>`); each build's SBOM step then reads a small JSON document per
extension instead of fetching, parsing and hashing every extension again.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from extensions.manifest import Manifest, parse_manifest
from workers.hashing import hash_reader
from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.store import Store

ROOTFS = "rootfs/"
# Bump when what `read_extension_files` reads from the same bytes would change.
EVIDENCE_RECIPE = 1


@dataclass(frozen=True)
class FileDigest:
    path: str  # absolute path in the booted system, e.g. /usr/bin/hello
    sha256: str
    sha1: str  # SPDX 2.3 requires SHA1 for every file


@dataclass(frozen=True)
class ExtensionFiles:
    author: str
    extra_info: str
    files: tuple[FileDigest, ...]  # sorted by path


def read_extension_files(tar: Path, manifest: Manifest | None = None) -> ExtensionFiles:
    """The evidence of the extension tar `tar` (verified by the caller); `manifest`, when the
    caller has already parsed the tar's manifest, spares parsing it again."""
    files = []
    # Uncompressed, as every stored extension tar is (`r:`: no decompressor is tried first).
    with tarfile.open(tar, "r:") as archive:
        for member in archive:
            if member.name == "manifest.yaml":
                if manifest is None:
                    manifest = parse_manifest(member_reader(archive, member).read())
            elif member.isfile() and member.name.startswith(ROOTFS):
                sha256, sha1 = file_digests(member_reader(archive, member))
                files.append(FileDigest("/" + member.name.removeprefix(ROOTFS), sha256, sha1))
    if manifest is None:
        raise ValueError("the extension has no manifest.yaml")
    return ExtensionFiles(
        manifest.author, manifest.extra_info, tuple(sorted(files, key=lambda f: f.path))
    )


def file_digests(reader: IO[bytes]) -> tuple[str, str]:
    """sha256 and SHA1 (which SPDX requires of every file) in one read."""
    hexdigests = hash_reader(reader, ("sha256", "sha1")).hexdigests
    return hexdigests["sha256"], hexdigests["sha1"]


def member_reader(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    reader = archive.extractfile(member)
    if reader is None:
        raise ValueError(f"{member.name}: not a regular file")
    return reader


def _key(digest: str) -> str:
    return cache_key("extension-evidence", {"digest": digest, "recipe": EVIDENCE_RECIPE})


def save_extension_files(store: Store, digest: str, evidence: ExtensionFiles) -> None:
    """Keep the evidence of the extension `digest` for every later build."""
    files = [[f.path, f.sha256, f.sha1] for f in evidence.files]
    info = {"author": evidence.author, "extra_info": evidence.extra_info, "files": files}
    save_entry(store, _key(digest), {}, info)


def load_extension_files(store: Store, digest: str, workdir: Path) -> ExtensionFiles | None:
    """The kept evidence of the extension `digest` (None if none is); `workdir` is an
    existing scratch directory (the entry has no files, nothing is written there)."""
    entry = load_entry(store, _key(digest), workdir)
    if entry is None:
        return None
    info = entry.info
    return ExtensionFiles(
        str(info["author"]),
        str(info["extra_info"]),
        tuple(FileDigest(path, sha256, sha1) for path, sha256, sha1 in info["files"]),
    )
