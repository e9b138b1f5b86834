"""Builders for extension sources in every accepted container, hostile ones included.

Everything is generated with tarfile/json at test time; no binary fixtures are committed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zstandard

MANIFEST = b"""version: v1alpha1
metadata:
  name: hello
  version: 1.0.0
  author: Test Author
  description: A test extension
  compatibility:
    talos:
      version: ">= v1.0.0"
"""


def manifest(name: str = "hello", version: str = "1.0.0", compat: str = ">= v1.0.0") -> bytes:
    return (
        "version: v1alpha1\nmetadata:\n"
        f"  name: {name}\n  version: {version}\n  author: Test Author\n"
        f"  description: A test extension\n  compatibility:\n    talos:\n"
        f'      version: "{compat}"\n'
    ).encode()


@dataclass(frozen=True)
class Member:
    """One tar member; `kind` is a tarfile type constant."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    return Member(name, data, tarfile.REGTYPE, mode)


def directory(name: str, mode: int = 0o755) -> Member:
    return Member(name, b"", tarfile.DIRTYPE, mode)


def symlink(name: str, target: str) -> Member:
    return Member(name, b"", tarfile.SYMTYPE, 0o777, target)


def hardlink(name: str, target: str) -> Member:
    return Member(name, b"", tarfile.LNKTYPE, 0o644, target)


def hello_members(extra: Iterable[Member] = (), body: bytes = MANIFEST) -> list[Member]:
    """A valid extension (manifest + a program under /usr/local/bin) plus `extra` members."""
    return [
        file("manifest.yaml", body),
        directory("rootfs"),
        directory("rootfs/usr"),
        directory("rootfs/usr/local"),
        directory("rootfs/usr/local/bin"),
        file("rootfs/usr/local/bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
        *extra,
    ]


def tar_bytes(
    members: Iterable[Member], fmt: int = tarfile.PAX_FORMAT, mtime: int = 1234567890
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.mtime = mtime
            info.uid, info.gid, info.uname, info.gname = 1000, 1000, "someone", "users"
            info.linkname = m.linkname
            info.size = len(m.data) if m.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def without_end_marker(data: bytes) -> bytes:
    """A tar cut right after its last member's data, at a block boundary: no end-of-archive."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        end = max(member.offset_data + member.size for member in tar.getmembers())
    return data[: -(-end // 512) * 512]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def write_tree(root: Path, members: Iterable[Member]) -> Path:
    """Materialise regular members as a directory tree (dirs, files, symlinks)."""
    root.mkdir(parents=True, exist_ok=True)
    for m in members:
        path = root / m.name
        if m.kind == tarfile.DIRTYPE:
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, m.mode)
        elif m.kind == tarfile.SYMTYPE:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(m.linkname, path)
        elif m.kind == tarfile.REGTYPE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(m.data)
            os.chmod(path, m.mode)
        else:
            raise ValueError(f"cannot write {m.kind!r} into a directory")
    return root


# --- OCI image layouts ----------------------------------------------------------------------

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


class OciLayout:
    """An OCI image layout being built: blobs by digest, then index.json."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(
        self,
        layers: Iterable[tuple[bytes, str]],
        arch: str = "amd64",
        platform_in_index: bool = True,
    ) -> None:
        config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {}}).encode()
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": self.blob(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [self.blob(data, media_type) for data, media_type in layers],
        }
        descriptor = self.blob(json.dumps(doc).encode(), MANIFEST_TYPE)
        if platform_in_index:
            descriptor["platform"] = {"architecture": arch, "os": "linux"}
        self.manifests.append(descriptor)

    def files(self, nested_index: bool = False) -> dict[str, bytes]:
        manifests = self.manifests
        if nested_index:
            inner = json.dumps(
                {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}
            ).encode()
            manifests = [self.blob(inner, INDEX_TYPE)]
        index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}
        files = {
            "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
            "index.json": json.dumps(index).encode(),
        }
        for digest, data in self.blobs.items():
            files[f"blobs/sha256/{digest}"] = data
        return files

    def write_dir(self, root: Path, nested_index: bool = False) -> Path:
        for name, data in self.files(nested_index).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root

    def tar(self, nested_index: bool = False, override: Mapping[str, bytes] = {}) -> bytes:
        files = {**self.files(nested_index), **override}
        return tar_bytes([file(name, data) for name, data in sorted(files.items())])


# --- damaged and hostile containers -------------------------------------------------------------


def gz_without_trailer(data: bytes) -> bytes:
    """A gzip stream holding all of `data` but missing its CRC and size trailer."""
    return gz(data)[:-8]


def gz_unfinished(data: bytes) -> bytes:
    """A gzip stream holding all of `data`, flushed but never finished (no last block)."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, 31)
    return deflate.compress(data) + deflate.flush(zlib.Z_SYNC_FLUSH)


def zst_unfinished(data: bytes) -> bytes:
    """A zstd frame holding all of `data` whose last block never comes."""
    frame = zstandard.ZstdCompressor().compressobj()
    return frame.compress(data) + frame.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def deeply_nested_json(depth: int = 100_000) -> bytes:
    """A JSON object nested `depth` levels deep (Python's json recurses once per level)."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def layered_bomb(layers: int = 16, size: int = 8 * 1024 * 1024 - 64 * 1024) -> OciLayout:
    """An image of `layers` gzip layers of `size` zero bytes each: every layer alone stays
    under the ratio check's floor (8 MiB); together they expand a thousand times."""
    layout = OciLayout()
    zero = bytes(size)  # one buffer shared by every layer's file
    zeros = [file(f"rootfs/usr/local/zero{i}", zero) for i in range(layers)]
    first = hello_members([zeros[0]])
    blobs = [tar_bytes(first), *(tar_bytes([member]) for member in zeros[1:])]
    layout.image([(gzip.compress(blob, 9, mtime=0), LAYER_GZIP) for blob in blobs])
    return layout
