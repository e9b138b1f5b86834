"""Stored extensions: adding (validate → canonical tar → store), the per-release catalog,
resolving schematic names, and fetching/extracting for assembly.

Catalog rules:
- an extension is listed for release `version`/`arch` when its compatibility range accepts
  the version, its `arch` is "" or `arch`, its `release` is "" or `version`, and any kernel
  modules it carries are for the release's kernel version;
- names are `<namespace>/<manifest name>`; bundled extensions use
  `Settings.extensions_namespace`, uploads too unless the uploader names another namespace
  (e.g. `siderolabs`, to keep upstream schematics and their IDs working unchanged);
- when several stored extensions share a name, the highest version (natural order: digit
  runs compare as numbers) wins, an arch-specific build beating an any-arch one;
- the same name + version with different content is refused (InvalidRequest); adding
  identical content again returns the existing record (filling in `cpu_microcode` when it
  was recorded before that field existed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from extensions.compat import parse_range
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS, Limits
from extensions.manifest import Manifest
from extensions.package import extract_extension as extract_extension_tar
from extensions.package import pack_extension
from extensions.package import read_extension as read_extension_tar
from extensions.tree import Tree
from workers.catalog.index import added, index_for, log_change
from workers.catalog.records import (
    CANONICAL_EPOCH,
    EXTENSIONS_PREFIX,
    ORIGIN_UPLOAD,
    ExtensionRecord,
    check_namespace,
    record_from_json,
    record_to_json,
    utc_now,
    version_sort_key,
)
from workers.errors import FactoryError, InvalidRequest, NotFound
from workers.hashing import sha256_file
from workers.releases.stored import list_versions, load_release
from workers.releases.versions import normalize_version, validate_arch
from workers.store import ObjectNotFound, Store


class CorruptObject(FactoryError):
    """A stored object no longer matches the digest that names it."""


def list_extension_records(store: Store) -> list[ExtensionRecord]:
    """Every stored extension record, by digest order (from this process's index)."""
    return index_for(store).records(store)


def _arches_overlap(a: str, b: str) -> bool:
    return not a or not b or a == b


def _check_conflicts(store: Store, record: ExtensionRecord) -> ExtensionRecord | None:
    """The existing record for identical content, or None; InvalidRequest on a clash."""
    try:
        existing = record_from_json(ExtensionRecord, store.get_bytes(record.record_key))
    except ObjectNotFound:
        existing = None
    if existing is not None:
        same = (existing.full_name, existing.version) == (record.full_name, record.version)
        if not same:
            raise InvalidRequest(
                f"identical content is already stored as {existing.full_name} "
                f"{existing.version} (sha256:{record.digest})"
            )
        return existing
    for other in index_for(store).named(store, record.full_name):
        if (
            (other.full_name, other.version, other.release)
            == (record.full_name, record.version, record.release)
            and _arches_overlap(other.arch, record.arch)
            and other.digest != record.digest
        ):
            raise InvalidRequest(
                f"extension {record.full_name} {record.version} already exists with different "
                f"content (sha256:{other.digest}); give the new one another version"
            )
    return None


def _check_some_release_accepts(store: Store, manifest: Manifest) -> None:
    versions = list_versions(store)
    accepted = parse_range(manifest.compatibility)
    if not any(accepted.accepts(v) for v in versions):
        raise InvalidRequest(
            f'extension {manifest.name} {manifest.version} requires version "'
            f'{manifest.compatibility}", which no available version satisfies '
            f"(available: {', '.join(versions) or 'none'})"
        )


def add_extension(
    store: Store,
    source_path: Path,
    namespace: str,
    epoch: int = CANONICAL_EPOCH,
    *,
    arch: str = "amd64",
    release: str = "",
    origin: str = ORIGIN_UPLOAD,
    label: str = "",
    uploaded_by: str = "",
    require_compatible: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> ExtensionRecord:
    """Validate and normalise `source_path`, store it, return its record.

    `source_path` is a directory, tar, tar.gz, tar.zst or OCI layout (directory or tar; the
    `linux/<arch>` image is used). InvalidRequest names the problem; nothing is stored then.
    With `require_compatible`, some stored release must satisfy the compatibility range.
    `uploaded_by` (a token name) and the time go into the record as its origin.
    """
    check_namespace(namespace)
    validate_arch(arch)
    with tempfile.TemporaryDirectory(prefix="extension-") as tmp:
        try:
            packed = pack_extension(
                source_path,
                Path(tmp) / "extension.tar",
                epoch=epoch,
                arch=arch,
                label=label or source_path.name,
                limits=limits,
            )
        except ExtensionError as exc:
            raise InvalidRequest(str(exc)) from None
        if require_compatible:
            _check_some_release_accepts(store, packed.manifest)
        manifest = packed.manifest
        record = ExtensionRecord(
            namespace=namespace,
            name=manifest.name,
            version=manifest.version,
            author=manifest.author,
            description=manifest.description,
            compatibility=manifest.compatibility,
            digest=packed.tar.digest,
            size=packed.tar.size,
            # Arch-specific only when known: an OCI image's platform, or a per-release build.
            arch=arch if packed.platform or release else "",
            release=release,
            kernel_versions=packed.kernel_versions,
            cpu_microcode=packed.cpu_microcode,
            origin=origin,
            uploaded_by=uploaded_by,
            uploaded_at=utc_now() if uploaded_by else "",
        )
        existing = _check_conflicts(store, record)
        if existing is not None and existing.cpu_microcode is None:
            # Recorded before microcode was: the same content, packed again, fills it in (the
            # bundled extensions are added again at every start).
            existing = dataclasses.replace(existing, cpu_microcode=record.cpu_microcode)
            store.put_bytes(existing.record_key, record_to_json(existing), "application/json")
        if existing is not None:
            if not index_for(store).knows(store, existing.digest):
                log_change(store, added(existing))  # its first adder stopped before logging
            return existing
        store.put_file(record.tar_key, packed.tar.path, content_type="application/x-tar")
        store.put_bytes(record.record_key, record_to_json(record), "application/json")
        log_change(store, added(record))  # last: the record exists for whoever reads this
    return record


def _listed(record: ExtensionRecord, version: str, arch: str, kernel_version: str) -> bool:
    return (
        record.arch in ("", arch)
        and record.release in ("", version)
        and all(k == kernel_version for k in record.kernel_versions)
        and _accepts(record.compatibility, version)
    )


@functools.lru_cache(maxsize=4096)
def _accepts(compatibility: str, version: str) -> bool:
    """Whether a compatibility range accepts `version` (most records share a few ranges:
    each is parsed once, not once per record and catalog)."""
    return parse_range(compatibility).accepts(version)


def catalog_for(store: Store, version: str, arch: str) -> list[ExtensionRecord]:
    """The extensions release `version`/`arch` offers, one per name, sorted by name;
    withdrawn ones are not offered.

    NotFound if the release does not exist; InvalidRequest if the version is malformed.
    """
    version = normalize_version(version)
    release = load_release(store, version, arch)

    def choose(records: list[ExtensionRecord]) -> ExtensionRecord | None:
        listed = [r for r in records if _listed(r, version, arch, release.kernel_version)]
        return max(listed, key=_preference, default=None)

    return index_for(store).catalog(store, (version, arch, release.kernel_version), choose)


def _preference(record: ExtensionRecord) -> tuple[object, ...]:
    return (version_sort_key(record.version), bool(record.arch), record.digest)


def resolve_extensions(
    store: Store, version: str, arch: str, names: Iterable[str]
) -> list[ExtensionRecord]:
    """The records for schematic `officialExtensions` names, in schematic order, each once.

    An unknown name → InvalidRequest `official extension "<name>" is not available for
    version <v>` (`unavailable_message`: naming the arches it exists for when that is why).
    """
    version = normalize_version(version)
    catalog = {record.full_name: record for record in catalog_for(store, version, arch)}
    resolved: list[ExtensionRecord] = []
    for name in names:
        record = catalog.get(name)
        if record is None:
            raise InvalidRequest(unavailable_message(store, name, name, version, arch))
        if record not in resolved:
            resolved.append(record)
    return resolved


def unavailable_message(store: Store, name: str, base: str, version: str, arch: str) -> str:
    """Why extension `name` (`base` without its pin) cannot be used for `version`/`arch`:
    built only for other architectures (an OCI upload's `linux/<arch>` image), or unknown."""
    arches = {r.arch for r in list_extension_records(store) if r.full_name == base}
    if arches and not arches & {"", arch}:
        built = ", ".join(f"linux/{other}" for other in sorted(arches))
        return (
            f'official extension "{name}" is built for {built} only, not for linux/{arch} '
            f"(version {version})"
        )
    return f'official extension "{name}" is not available for version {version}'


def fetch_verified(
    store: Store, key: str, digest: str, dest: Path, *, in_place: bool = False
) -> Path:
    """Download `key` to `dest` and check its sha256; CorruptObject (and no file) if wrong.

    `in_place`: when the store keeps `key` on this machine, that file itself (checked), not
    a copy: for reading by this process only (never written, never handed to a tool)."""
    local = store.local_path(key) if in_place else None
    if local is not None and local.is_file():
        found = sha256_file(local)
        if found != digest:
            raise CorruptObject(f"{key} is corrupt: sha256 {found}, expected {digest}")
        return local
    try:
        store.download(key, dest)
    except ObjectNotFound:
        raise NotFound(f"{key} is not in the store") from None
    found = sha256_file(dest)
    if found != digest:
        dest.unlink(missing_ok=True)
        raise CorruptObject(f"{key} is corrupt: sha256 {found}, expected {digest}")
    return dest


def fetch_extension(store: Store, digest: str, dest: Path, *, in_place: bool = False) -> Path:
    """The canonical tar of extension `digest`, downloaded to the file `dest` and verified
    (`in_place`: see `fetch_verified`)."""
    return fetch_verified(
        store, f"{EXTENSIONS_PREFIX}{digest}.tar", digest, dest, in_place=in_place
    )


@contextlib.contextmanager
def read_extension(tar: Path, workdir: Path) -> Iterator[tuple[Manifest, Tree]]:
    """The manifest and validated tree of extension `tar`, its files read in place (see
    `extensions.package.read_extension`); InvalidRequest if the tar is not a valid extension."""
    try:
        with read_extension_tar(tar, workdir) as (manifest, tree):
            yield manifest, tree
    except ExtensionError as exc:
        raise InvalidRequest(str(exc)) from None


def extract_extension(tar: Path, dest_dir: Path) -> Manifest:
    """Unpack extension `tar` into the new directory `dest_dir` (`manifest.yaml`, `rootfs/`),
    re-validating every entry; nothing is ever written outside `dest_dir`."""
    try:
        return extract_extension_tar(tar, dest_dir)
    except ExtensionError as exc:
        raise InvalidRequest(str(exc)) from None
