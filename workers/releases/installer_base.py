"""A release's installer base image: store it, fetch it, read one from an OCI layout or a
docker-archive (`release import --installer-base`).

The base is the bottom of every installer image the factory composes (talos-formats §8.1-8.2):
its config (entrypoint, env, labels are kept) and its layers, byte for byte as shipped (gzip
or plain tar), each stored under its sha256 like every release blob and listed in the
manifest's `installer_base`.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from workers.errors import InvalidRequest
from workers.registry.archive import ArchiveError, archive_member
from workers.releases.manifest import FileEntry, InstallerBase
from workers.releases.stored import Release, file_entry, put_blob
from workers.store import Store
from workers.store.objects import Content, Objects, blob_key

MAX_JSON_BYTES = 1 << 20
_INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}


@dataclass(frozen=True)
class BaseImage:
    """An installer base on local disk: its config bytes and layer files, bottom first."""

    config: bytes
    layers: tuple[Path, ...]

    def config_json(self) -> dict[str, Any]:
        doc = json.loads(self.config)
        if not isinstance(doc, dict):
            raise InvalidRequest("the installer base config is not a JSON object")
        return doc

    def diff_ids(self) -> list[str]:
        ids = self.config_json().get("rootfs", {}).get("diff_ids", [])
        if not isinstance(ids, list) or len(ids) != len(self.layers):
            raise InvalidRequest("the installer base config's diff_ids do not match its layers")
        return [str(i) for i in ids]


def store_installer_base(store: Store, image: BaseImage, workdir: Path) -> InstallerBase:
    """Store the config and layers as blobs (before the manifest that names them)."""
    config_path = workdir / "installer-base-config.json"
    config_path.write_bytes(image.config)
    config = put_blob(store, config_path)
    config_path.unlink()
    return InstallerBase(config=config, layers=tuple(put_blob(store, p) for p in image.layers))


def fetch_installer_base(release: Release, store: Store, workdir: Path) -> BaseImage | None:
    """The release's installer base in `workdir` (digests checked), None if it has none."""
    base = release.installer_base
    if base is None:
        return None
    workdir.mkdir(parents=True, exist_ok=True)
    config = _download(store, base.config, workdir / "config.json").read_bytes()
    layers = tuple(
        _download(store, entry, workdir / f"layer-{i}") for i, entry in enumerate(base.layers)
    )
    return BaseImage(config=config, layers=layers)


def _download(store: Store, entry: FileEntry, dest: Path) -> Path:
    if not Objects(store).fetch(blob_key(entry.sha256), Content(entry.sha256, entry.size), dest):
        raise InvalidRequest(f"installer base blob {entry.sha256} is missing or corrupt")
    return dest


def read_installer_base(src: Path, arch: str, workdir: Path) -> BaseImage:
    """The `linux/<arch>` image of an OCI layout directory or a docker-archive tar."""
    workdir.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        image = _from_oci_layout(src, arch)
    elif tarfile.is_tarfile(src):
        image = _from_docker_archive(src, workdir)
    else:
        raise InvalidRequest(
            "the installer base must be an OCI layout directory or a docker-archive tar"
        )
    config = image.config_json()
    if config.get("architecture") != arch or config.get("os") != "linux":
        raise InvalidRequest(
            f"the installer base is {config.get('os')}/{config.get('architecture')}, "
            f"expected linux/{arch}"
        )
    image.diff_ids()
    return image


def _from_oci_layout(root: Path, arch: str) -> BaseImage:
    doc = _json_file(root / "index.json", "index.json")
    # Follow indexes (a multi-arch image is an index inside the layout's index) to the
    # manifest for linux/<arch>.
    while doc.get("mediaType") in _INDEX_TYPES or "manifests" in doc:
        chosen = _pick_manifest(doc.get("manifests", []), arch)
        doc = _json_file(_oci_blob(root, chosen), "a manifest")
    layers = tuple(_oci_blob(root, layer) for layer in doc.get("layers", []))
    config = _oci_blob(root, doc.get("config", {})).read_bytes()
    return BaseImage(config=config, layers=layers)


def _pick_manifest(manifests: object, arch: str) -> dict[str, Any]:
    if not isinstance(manifests, list) or not manifests:
        raise InvalidRequest("the OCI layout's index lists no manifests")
    if len(manifests) == 1:
        only: dict[str, Any] = manifests[0]
        return only
    for entry in manifests:
        platform = entry.get("platform", {}) if isinstance(entry, dict) else {}
        if platform.get("architecture") == arch and platform.get("os") == "linux":
            chosen: dict[str, Any] = entry
            return chosen
    raise InvalidRequest(f"the OCI layout has no linux/{arch} image")


def _oci_blob(root: Path, descriptor: object) -> Path:
    digest = descriptor.get("digest", "") if isinstance(descriptor, dict) else ""
    algorithm, _, hex_digest = str(digest).partition(":")
    if algorithm != "sha256" or len(hex_digest) != 64 or not hex_digest.isalnum():
        raise InvalidRequest("the OCI layout names a blob without a sha256 digest")
    path = root / "blobs" / "sha256" / hex_digest
    if not path.is_file() or file_entry(path).sha256 != hex_digest:
        raise InvalidRequest(f"the OCI layout's blob sha256:{hex_digest} is missing or corrupt")
    return path


def _json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise InvalidRequest(f"{what} of the installer base is too large")
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        raise InvalidRequest(f"{what} of the installer base is missing or not JSON") from None
    if not isinstance(doc, dict):
        raise InvalidRequest(f"{what} of the installer base is not a JSON object")
    return doc


def _from_docker_archive(src: Path, workdir: Path) -> BaseImage:
    with tarfile.open(src, "r:") as tar:
        entries = json.loads(_member(tar, "manifest.json").read(MAX_JSON_BYTES))
        if not isinstance(entries, list) or len(entries) != 1:
            raise InvalidRequest("the docker-archive must hold exactly one image")
        config = _member(tar, str(entries[0]["Config"])).read(MAX_JSON_BYTES)
        layers = []
        for i, name in enumerate(entries[0]["Layers"]):
            dest = workdir / f"base-layer-{i}"
            with dest.open("wb") as out:
                reader = _member(tar, str(name))
                while chunk := reader.read(1 << 20):
                    out.write(chunk)
            layers.append(dest)
    return BaseImage(config=config, layers=tuple(layers))


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        return archive_member(tar, name)
    except ArchiveError as error:
        raise InvalidRequest(f"the docker-archive: {error}") from None


def copy_installer_base(source: Store, release: Release, dest: Store, workdir: Path) -> None:
    """Copy the release's installer base blobs from `source` to `dest` (before its manifest)."""
    image = fetch_installer_base(release, source, workdir / "installer-base-copy")
    if image is not None:
        store_installer_base(dest, image, workdir)
        shutil.rmtree(workdir / "installer-base-copy")
