"""Plans: a frozen description of everything that shapes the bytes of one asset.

`make_plan` resolves a schematic + version + profile against the store (release, extension
digests in order including the schematic extension, kernel modules) and keeps only the
schematic fields that apply to the asset's kind (image-factory-api §3.3):

| kind      | extensions + modules | extraKernelArgs, META | bootloader, sector size |
|-----------|----------------------|-----------------------|-------------------------|
| kernel    | -                    | -                     | -                       |
| cmdline   | -                    | ✓ (META as argument)  | -                       |
| initramfs | ✓                    | -                     | -                       |
| iso       | ✓                    | ✓ (META as argument)  | bootloader              |
| image     | ✓                    | ✓ (META partition)    | ✓                       |

`plan.key` is the sha256 of the plan's canonical JSON (sorted keys, compact), so every
schematic's `kernel-amd64` of one release shares one key, and changing an input that matters
to a kind changes its key. `RECIPE_VERSION` goes into every key: bump it whenever the bytes
a plan produces change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from extensions.schematic_ext import make_schematic_extension, schematic_author
from schematics import Bootloader, Schematic, canonical_bytes
from workers.catalog.extensions import resolve_extensions
from workers.errors import InvalidRequest, NotImplementedYet
from workers.profiles import Kind, Profile, check_buildable
from workers.releases.catalog import Release, blob_key, load_release
from workers.releases.modules import module_index, resolve_modules
from workers.releases.versions import normalize_version
from workers.settings import Settings
from workers.store import Store

RECIPE_VERSION = 1

SOURCE_CATALOG = "catalog"  # extensions/<digest>.tar, with a catalog record
SOURCE_BLOB = "blob"  # blobs/sha256/<digest> (the generated schematic extension)

WITH_EXTENSIONS = frozenset({Kind.INITRAMFS, Kind.ISO, Kind.IMAGE})
WITH_KERNEL_ARGS = frozenset({Kind.CMDLINE, Kind.ISO, Kind.IMAGE})
WITH_BOOTLOADER = frozenset({Kind.ISO, Kind.IMAGE})
BUILT_BOOTLOADERS = frozenset({Bootloader.NONE, Bootloader.GRUB})
BUILT_SECTOR_SIZES = frozenset({0, 512})


@dataclass(frozen=True)
class ExtensionInput:
    """One layer source, in schematic order; the schematic extension comes last."""

    name: str
    version: str
    digest: str
    source: str = SOURCE_CATALOG

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "source": self.source,
        }


@dataclass(frozen=True)
class Plan:
    profile: Profile
    version: str
    release_digest: str
    extensions: tuple[ExtensionInput, ...] = ()
    kernel_modules: tuple[str, ...] = ()
    extra_kernel_args: tuple[str, ...] = ()
    meta: tuple[tuple[int, str], ...] = ()
    bootloader: str = ""
    sector_size: int = 0
    recipe: int = RECIPE_VERSION

    @property
    def kind(self) -> Kind:
        return self.profile.kind

    @property
    def arch(self) -> str:
        return self.profile.arch

    def to_json(self) -> dict[str, Any]:
        """The canonical description; the asset path is not part of it (aliases share bytes)."""
        doc: dict[str, Any] = {
            "profile": self.profile.shape(),
            "version": self.version,
            "release": self.release_digest,
            "recipe": self.recipe,
        }
        if self.kind in WITH_EXTENSIONS:
            doc["extensions"] = [e.to_json() for e in self.extensions]
            doc["kernel_modules"] = list(self.kernel_modules)
        if self.kind in WITH_KERNEL_ARGS:
            doc["extra_kernel_args"] = list(self.extra_kernel_args)
            doc["meta"] = [[key, value] for key, value in self.meta]
        if self.kind in WITH_BOOTLOADER:
            doc["bootloader"] = self.bootloader
        if self.kind is Kind.IMAGE:
            doc["sector_size"] = self.sector_size
        return doc

    def canonical_json(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @property
    def key(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def initramfs_plan(self) -> Plan:
        """The plan of this asset's initramfs (what ISO and disk images boot)."""
        profile = Profile(f"initramfs-{self.arch}.xz", Kind.INITRAMFS, "metal", self.arch)
        return Plan(
            profile=profile,
            version=self.version,
            release_digest=self.release_digest,
            extensions=self.extensions,
            kernel_modules=self.kernel_modules,
        )

    def with_path(self, path: str) -> Plan:
        """The same plan under another (alias) asset path."""
        return replace(self, profile=replace(self.profile, path=path))


def make_plan(
    store: Store,
    schematic: Schematic,
    schematic_id: str,
    version: str,
    profile: Profile,
    settings: Settings,
) -> Plan:
    """Resolve everything `profile` needs for `schematic` at `version`.

    InvalidRequest names an unknown extension or module and the version; NotFound for an
    unknown version; NotImplementedYet for what this factory does not build yet.
    """
    check_buildable(profile)
    version = normalize_version(version)
    release = load_release(store, version, profile.arch)
    custom = schematic.customization
    _check_unsupported(schematic, profile, version)
    plan = Plan(profile=profile, version=version, release_digest=release.digest)
    if profile.kind in WITH_EXTENSIONS:
        plan = replace(
            plan,
            extensions=_extensions(store, schematic, schematic_id, release, settings),
            kernel_modules=_kernel_modules(store, release, custom.kernel_modules),
        )
    if profile.kind in WITH_KERNEL_ARGS:
        plan = replace(
            plan,
            extra_kernel_args=tuple(custom.extra_kernel_args),
            meta=tuple((m.key, m.value) for m in custom.meta),
        )
    if profile.kind in WITH_BOOTLOADER:
        plan = replace(plan, bootloader=str(custom.bootloader))
    if profile.kind is Kind.IMAGE:
        plan = replace(plan, sector_size=custom.disk_image.sector_size)
    return plan


def _check_unsupported(schematic: Schematic, profile: Profile, version: str) -> None:
    custom = schematic.customization
    kind = profile.kind
    if (
        custom.embedded_machine_configuration
        and kind is not Kind.KERNEL
        and kind is not Kind.CMDLINE
    ):
        raise InvalidRequest(f"embedding configuration is not supported for version {version}")
    if schematic.overlay.name and kind in (Kind.CMDLINE, Kind.ISO, Kind.IMAGE):
        raise NotImplementedYet(
            f"overlays are not applied to {kind} assets yet (overlay {schematic.overlay.name!r})"
        )
    if kind in WITH_BOOTLOADER and custom.bootloader not in BUILT_BOOTLOADERS:
        raise NotImplementedYet(
            f"the {custom.bootloader} bootloader is not built yet (GRUB is): {profile.path}"
        )
    if kind is Kind.IMAGE and custom.disk_image.sector_size not in BUILT_SECTOR_SIZES:
        raise NotImplementedYet(
            f"disk images with {custom.disk_image.sector_size}-byte sectors are not built yet"
        )


def _extensions(
    store: Store, schematic: Schematic, schematic_id: str, release: Release, settings: Settings
) -> tuple[ExtensionInput, ...]:
    names = schematic.customization.system_extensions.official_extensions
    records = resolve_extensions(store, release.version, release.arch, names)
    inputs = [ExtensionInput(r.full_name, r.version, r.digest) for r in records]
    tar = make_schematic_extension(
        schematic_id,
        canonical_bytes(schematic),
        schematic_author(settings.external_url),
        release.source_date_epoch,
    )
    digest = hashlib.sha256(tar).hexdigest()
    # Content-addressed and idempotent: the build fetches it like any other verified blob.
    if not store.exists(blob_key(digest)):
        store.put_bytes(blob_key(digest), tar, content_type="application/x-tar")
    inputs.append(ExtensionInput("schematic", schematic_id, digest, SOURCE_BLOB))
    return tuple(inputs)


def _kernel_modules(store: Store, release: Release, names: tuple[str, ...]) -> tuple[str, ...]:
    if not names:
        return ()
    # Validates every name (InvalidRequest naming the module and the version).
    resolve_modules(module_index(store, release), names, release.version)
    return tuple(names)
