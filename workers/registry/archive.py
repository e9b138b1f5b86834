"""Docker archives (`docker save` layout, what installer builds produce) → OCI content.

The archive's config and layers become blobs unchanged, so their digests are those of the
bytes in the archive: gzip layers stay `tar+gzip`, plain ones `tar`, nothing is recompressed.
The image manifest built over them is stored as a blob too. Nothing but `manifest.json` and
the files it names is read, each as a regular member of bounded size where it is JSON.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from extensions.compression import GZIP_MAGIC
from workers.registry import oci
from workers.registry.content import put_document
from workers.store import Store
from workers.store.objects import Content, Objects

MAX_JSON_BYTES = 1 << 20
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The file is not a single-image docker archive this registry can serve."""


@dataclass(frozen=True)
class ImportedImage:
    manifest: oci.Descriptor  # with its platform, ready for an index
    blobs: tuple[oci.Descriptor, ...]  # config, then layers


def import_docker_archive(store: Store, archive: Path, arch: str, workdir: Path) -> ImportedImage:
    """Store the one image of `archive` (built for `arch`) as OCI blobs plus its manifest."""
    with tarfile.open(archive, "r:") as tar:
        entries = _read_json(tar, "manifest.json")
        if not isinstance(entries, list) or len(entries) != 1:
            raise ArchiveError(f"{archive.name}: expected exactly one image in manifest.json")
        entry = entries[0]
        config_name, layer_names = str(entry["Config"]), [str(n) for n in entry["Layers"]]
        config_bytes = _read_bytes(tar, config_name)
        platform = _platform(json.loads(config_bytes), len(layer_names), arch, archive.name)
        config = oci.describe(oci.CONFIG, config_bytes)
        put_document(store, config, config_bytes)
        layers = [_store_layer(store, tar, name, workdir) for name in layer_names]
    manifest_bytes = oci.encode(oci.image_manifest(config, layers))
    manifest = oci.describe(oci.MANIFEST, manifest_bytes, platform=platform)
    put_document(store, manifest, manifest_bytes)
    return ImportedImage(manifest, (config, *layers))


def _platform(config: Any, layer_count: int, arch: str, name: str) -> dict[str, str]:
    if not isinstance(config, dict):
        raise ArchiveError(f"{name}: the image config is not a JSON object")
    if config.get("architecture") != arch or config.get("os") != "linux":
        raise ArchiveError(
            f"{name}: image is {config.get('os')}/{config.get('architecture')}, "
            f"expected linux/{arch}"
        )
    if len(config.get("rootfs", {}).get("diff_ids", [])) != layer_count:
        raise ArchiveError(f"{name}: config diff_ids do not match the layers")
    platform = {"architecture": arch, "os": "linux"}
    if config.get("variant"):
        platform["variant"] = str(config["variant"])
    return platform


def archive_member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    """The regular file `name` of a docker archive; ArchiveError naming what is wrong."""
    try:
        info = tar.getmember(name)
    except KeyError:
        raise ArchiveError(f"archive has no member {name!r}") from None
    reader = tar.extractfile(info) if info.isreg() else None
    if reader is None:
        raise ArchiveError(f"archive member {name!r} is not a regular file")
    return reader


def _read_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    data = archive_member(tar, name).read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ArchiveError(f"archive member {name!r} is larger than {MAX_JSON_BYTES} bytes")
    return data


def _read_json(tar: tarfile.TarFile, name: str) -> Any:
    try:
        return json.loads(_read_bytes(tar, name))
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"archive member {name!r} is not JSON: {exc}") from None


def _store_layer(store: Store, tar: tarfile.TarFile, name: str, workdir: Path) -> oci.Descriptor:
    reader = archive_member(tar, name)
    path = workdir / "layer"
    digest, size, head = hashlib.sha256(), 0, b""
    with path.open("wb") as out:
        while chunk := reader.read(_CHUNK):
            head = head or chunk[:2]
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    media_type = oci.LAYER_GZIP if head == GZIP_MAGIC else oci.LAYER_TAR
    layer = oci.Descriptor(media_type, "sha256:" + digest.hexdigest(), size)
    Objects(store).add_blob(path, Content(layer.hex, size), content_type=media_type)
    path.unlink()
    return layer
