"""Releases in the store: content-addressed blobs plus one immutable manifest per version/arch.

Keys:
- `blobs/sha256/<hex>`: file contents, written only when absent, digest verified on write
  and on every fetch;
- `releases/<version>/<arch>/manifest.json`: the manifest (see `manifest.py`), written
  last, so a release is visible only once every blob it names is stored. Writing a
  different manifest for an existing version/arch is an error; an identical one is a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from workers.errors import FactoryError, InvalidRequest, NotFound
from workers.releases.manifest import FileEntry, Manifest, ManifestError
from workers.releases.versions import normalize_version, sort_versions, validate_arch
from workers.store import ObjectNotFound, Store
from workers.store.objects import Content, Objects, Staged, content_of

# Re-exported: where the blob key scheme lived before the object layer; many modules import it here.
from workers.store.objects import blob_key as blob_key

RELEASES_PREFIX = "releases/"
MANIFEST_NAME = "manifest.json"


class DigestMismatch(FactoryError):
    """Stored bytes do not match the digest that names them."""


class ReleaseConflict(FactoryError):
    """A different manifest already exists for this version and arch."""


def manifest_key(version: str, arch: str) -> str:
    return f"{RELEASES_PREFIX}{version}/{arch}/{MANIFEST_NAME}"


def file_entry(path: Path) -> FileEntry:
    """sha256 and size of a local file, read in chunks (module trees are hundreds of MB)."""
    content = content_of(path)
    return FileEntry(sha256=content.sha256, size=content.size)


def put_blob(store: Store, path: Path, expected: FileEntry | None = None) -> FileEntry:
    """Store `path` under its digest unless already there; check it against `expected`."""
    return _add_blob(Objects(store).new(), path.name, path, expected)


def _add_blob(staged: Staged, name: str, path: Path, expected: FileEntry | None) -> FileEntry:
    """Hash `path` once, check it against `expected`, then stage it as a blob."""
    entry = file_entry(path)
    if expected is not None and entry != expected:
        raise DigestMismatch(
            f"{path.name}: sha256 {entry.sha256} size {entry.size}, "
            f"expected sha256 {expected.sha256} size {expected.size}"
        )
    staged.add_file(name, path, Content(entry.sha256, entry.size))
    return entry


@dataclass(frozen=True)
class Release(Manifest):
    """A stored release: the manifest fields plus `digest`, the sha256 of the manifest bytes."""

    digest: str = field(kw_only=True)

    def fetch(self, store: Store, name: str, dest: Path, *, in_place: bool = False) -> Path:
        """Download file `name` of this release to `dest`; raise DigestMismatch if corrupt.

        `in_place`: when the store keeps the file on this machine, return that file itself
        (verified) instead of writing a copy to `dest`. Only for reading by this process:
        never written, never handed to a tool (a sandboxed tool does not see the store)."""
        entry = self.files.get(name)
        if entry is None:
            raise NotFound(f"release {self.version}/{self.arch} has no file {name!r}")
        content = Content(entry.sha256, entry.size)
        key = blob_key(entry.sha256)
        local = store.local_path(key) if in_place else None
        if local is not None and local.is_file():
            if content_of(local) == content:
                return local
        elif Objects(store).fetch(key, content, dest):
            return dest
        elif not store.exists(key):
            raise NotFound(
                f"blob {entry.sha256} of {name} for release {self.version}/{self.arch} is missing"
            )
        raise DigestMismatch(
            f"blob for {name} of release {self.version}/{self.arch} is corrupt: "
            f"expected sha256 {entry.sha256} size {entry.size}"
        )


def save_release(store: Store, manifest: Manifest, files: Mapping[str, Path]) -> Release:
    """Store every file (verified against the manifest), then the manifest, last.

    Raises ManifestError for an incomplete manifest, DigestMismatch when a file does not
    match its entry, ReleaseConflict when a different manifest exists for version/arch.
    """
    manifest.validate()
    if set(files) != set(manifest.files):
        raise ManifestError(
            f"files given {sorted(files)} differ from the manifest's {sorted(manifest.files)}"
        )
    data = manifest.to_json()
    key = manifest_key(manifest.version, manifest.arch)
    objects = Objects(store)
    existing = objects.document(key)
    if existing is not None and existing != data:
        raise ReleaseConflict(
            f"release {manifest.version}/{manifest.arch} already exists with different contents"
        )
    staged = objects.new()
    for name in sorted(files):
        _add_blob(staged, name, files[name], manifest.files[name])
    if existing is None:
        staged.commit(key, data)
    return _release(manifest, data)


def load_release(store: Store, version: str, arch: str) -> Release:
    """The stored release `version`/`arch`; NotFound when absent, InvalidRequest if malformed."""
    version = normalize_version(version)
    validate_arch(arch)
    try:
        data = store.get_bytes(manifest_key(version, arch))
    except ObjectNotFound:
        raise NotFound(f"version {version} is not available for {arch}") from None
    manifest = Manifest.from_json(data)
    if (manifest.version, manifest.arch) != (version, arch):
        raise ManifestError(f"manifest at {manifest_key(version, arch)} describes another release")
    return _release(manifest, data)


def list_versions(store: Store) -> list[str]:
    """Versions with at least one stored manifest, in ascending semver order."""
    found = set()
    for key in store.list(RELEASES_PREFIX):
        parts = key[len(RELEASES_PREFIX) :].split("/")
        if len(parts) == 3 and parts[2] == MANIFEST_NAME:
            try:
                found.add(normalize_version(parts[0]))
            except InvalidRequest:
                continue  # not a release directory
    return sort_versions(list(found))


def list_arches(store: Store, version: str) -> list[str]:
    version = normalize_version(version)
    prefix = f"{RELEASES_PREFIX}{version}/"
    return sorted(
        key[len(prefix) :].split("/")[0]
        for key in store.list(prefix)
        if key.endswith("/" + MANIFEST_NAME)
    )


def _release(manifest: Manifest, data: bytes) -> Release:
    return Release(
        version=manifest.version,
        arch=manifest.arch,
        source_date_epoch=manifest.source_date_epoch,
        kernel_version=manifest.kernel_version,
        kernel_args=manifest.kernel_args,
        platform_args=manifest.platform_args,
        files=manifest.files,
        origin=manifest.origin,
        schema=manifest.schema,
        installer_base=manifest.installer_base,
        digest=hashlib.sha256(data).hexdigest(),
    )
