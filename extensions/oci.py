"""Flattening an OCI image layout (a directory or a tar of one) into a staged tree.

`index.json` → (nested indexes →) the image manifest for `linux/<arch>` → its layers, applied
in order with whiteouts (`.wh.<name>`, `.wh..wh..opq`). Every blob in `blobs/` is hashed and
must match its name, and every descriptor's size must match its blob, before anything is
read from it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from extensions.budget import Budget
from extensions.compression import BoundedStream
from extensions.errors import ExtensionError
from extensions.tarstream import TarReader
from extensions.tree import Entry, Tree

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
}
_HASHES = {"sha256": 64, "sha512": 128}
_MAX_NESTING = 4
_CHUNK = 1024 * 1024


def is_oci_layout(tree: Tree) -> bool:
    """A staged tree that holds an OCI image layout rather than an extension."""
    return "oci-layout" in tree.entries and "index.json" in tree.entries


class _Layout:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.label = tree.label

    def verify_blobs(self) -> None:
        for path, entry in sorted(self.tree.entries.items()):
            parts = path.split("/")
            if parts[0] != "blobs":
                continue
            if entry.kind == "dir" and len(parts) <= 2:
                if len(parts) == 2 and parts[1] not in _HASHES:
                    raise ExtensionError(f"{self.label}: {path}: unsupported digest algorithm")
                continue
            if len(parts) != 3 or parts[1] not in _HASHES or entry.kind != "file":
                raise ExtensionError(f"{self.label}: {path}: unexpected entry in blobs/")
            algorithm, hexdigest = parts[1], parts[2]
            if len(hexdigest) != _HASHES[algorithm] or hexdigest.strip("0123456789abcdef"):
                raise ExtensionError(f"{self.label}: {path}: not a digest name")
            actual = _hash_file(entry, algorithm)
            if actual != hexdigest:
                raise ExtensionError(
                    f"{self.label}: blob {algorithm}:{hexdigest} does not match its content "
                    f"({algorithm}:{actual})"
                )

    def blob(self, descriptor: object, what: str) -> Entry:
        if not isinstance(descriptor, dict):
            raise ExtensionError(f"{self.label}: {what}: descriptor is not an object")
        digest = descriptor.get("digest")
        if not isinstance(digest, str) or ":" not in digest:
            raise ExtensionError(f"{self.label}: {what}: descriptor without a valid digest")
        algorithm, _, hexdigest = digest.partition(":")
        entry = self.tree.entries.get(f"blobs/{algorithm}/{hexdigest}")
        if algorithm not in _HASHES or entry is None or entry.kind != "file":
            raise ExtensionError(f"{self.label}: {what}: blob {digest} is missing")
        size = descriptor.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size != entry.size:
            raise ExtensionError(
                f"{self.label}: {what}: blob {digest} has {entry.size} bytes, descriptor says "
                f"{size}"
            )
        return entry

    def json(self, entry: Entry, what: str) -> dict[str, Any]:
        if entry.kind != "file":
            raise ExtensionError(f"{self.label}: {what}: not a regular file")
        limit = self.tree.budget.limits.max_json_bytes
        if entry.size > limit:
            raise ExtensionError(f"{self.label}: {what}: larger than {limit} bytes")
        try:
            value = json.loads(entry.read_bytes())
        except (ValueError, UnicodeDecodeError):
            raise ExtensionError(f"{self.label}: {what}: not valid JSON") from None
        except RecursionError:  # the decoder recurses once per level of nesting
            raise ExtensionError(f"{self.label}: {what}: JSON nested too deeply") from None
        if not isinstance(value, dict):
            raise ExtensionError(f"{self.label}: {what}: not a JSON object")
        return value

    def find_manifest(self, index: dict[str, Any], arch: str, depth: int) -> dict[str, Any] | None:
        if depth > _MAX_NESTING:
            raise ExtensionError(f"{self.label}: image indexes nested too deeply")
        manifests = index.get("manifests")
        if not isinstance(manifests, list):
            raise ExtensionError(f"{self.label}: image index without a manifests list")
        for i, descriptor in enumerate(manifests):
            what = f"manifests[{i}]"
            if not isinstance(descriptor, dict):
                raise ExtensionError(f"{self.label}: {what}: descriptor is not an object")
            media_type = descriptor.get("mediaType")
            if media_type in INDEX_TYPES:
                nested = self.json(self.blob(descriptor, what), what)
                found = self.find_manifest(nested, arch, depth + 1)
                if found is not None:
                    return found
            elif media_type in MANIFEST_TYPES:
                manifest = self.json(self.blob(descriptor, what), what)
                if self._platform_matches(descriptor, manifest, arch, what):
                    return manifest
        return None

    def _platform_matches(
        self, descriptor: dict[str, Any], manifest: dict[str, Any], arch: str, what: str
    ) -> bool:
        platform = descriptor.get("platform")
        if not isinstance(platform, dict):
            config = self.json(self.blob(manifest.get("config"), f"{what} config"), "config")
            platform = config
        return platform.get("os") == "linux" and platform.get("architecture") == arch


def _hash_file(entry: Entry, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with entry.open() as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def flatten_oci(layout: Tree, arch: str, spool: Path) -> Tree:
    """The `linux/<arch>` image of the staged layout, its layers applied in order."""
    oci = _Layout(layout)
    marker = oci.json(layout.entries["oci-layout"], "oci-layout")
    if not isinstance(marker.get("imageLayoutVersion"), str):
        raise ExtensionError(f"{oci.label}: oci-layout: no imageLayoutVersion")
    oci.verify_blobs()
    index = oci.json(layout.entries["index.json"], "index.json")
    manifest = oci.find_manifest(index, arch, 0)
    if manifest is None:
        raise ExtensionError(f"{oci.label}: OCI layout has no linux/{arch} image")
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ExtensionError(f"{oci.label}: image manifest without a layers list")
    limit = layout.budget.limits.max_layers
    if len(layers) > limit:
        raise ExtensionError(f"{oci.label}: image has {len(layers)} layers, more than {limit}")
    # One budget for all layers: their output and their compression ratio count together.
    image = Tree(spool, oci.label, Budget(layout.budget.limits, oci.label))
    seen: dict[str, int] = {}
    for i, descriptor in enumerate(layers):
        what = f"layer {i}"
        if not isinstance(descriptor, dict):
            raise ExtensionError(f"{oci.label}: {what}: descriptor is not an object")
        media_type = descriptor.get("mediaType")
        if media_type not in LAYER_TYPES:
            raise ExtensionError(f"{oci.label}: {what}: unsupported media type {media_type!r}")
        entry = oci.blob(descriptor, what)
        # A blob named twice would be read twice: amplification, never a real image.
        digest = str(descriptor["digest"])
        if digest in seen:
            raise ExtensionError(f"{oci.label}: {what}: repeats layer {seen[digest]} ({digest})")
        seen[digest] = i
        label = f"{oci.label}: {what} ({digest})"
        with entry.open() as raw:
            stream = BoundedStream(raw, label, image.budget)
            layer = image.read_tar(TarReader(stream, label, image.budget), whiteouts=True)
        image.apply(layer)
    return image
