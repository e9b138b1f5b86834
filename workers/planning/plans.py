"""Plans: a frozen description of everything that shapes the bytes of one asset.

`make_plan` resolves a schematic + version + profile against the store (release, extension
digests in order including the schematic extension, kernel modules) and keeps only the
schematic fields that apply to the asset's kind (image-factory-api §3.3):

| kind      | extensions + modules | extraKernelArgs, META | bootloader, sector size | overlay  |
|-----------|----------------------|-----------------------|-------------------------|----------|
| kernel    | -                    | -                     | -                       | -        |
| cmdline   | -                    | ✓ (META as argument)  | -                       | args     |
| initramfs | ✓                    | -                     | -                       | -        |
| iso       | ✓                    | ✓ (META as argument)  | bootloader              | args+ESP |
| uki       | ✓                    | ✓ (META as argument)  | -                       | args     |
| installer | ✓                    | args, SecureBoot only | -                       | args, SB |
| image     | ✓                    | ✓ (META partition)    | ✓                       | all      |
| sysext    | ✓                    | -                     | -                       | -        |

The bootloader is resolved here: SecureBoot → sd-boot; `none` → grub (Talos < 1.10 rule).
SecureBoot plans record the signing certificate's fingerprint (a new key means new bytes),
and for ISOs and disks the enrollKeys mode and the well-known certificates' digest.

Extension names resolve durably (`workers.catalog.resolutions`): the first plan with
extensions for a schematic, release and arch records which stored extension each unpinned
name means, and every later plan uses that record, whatever was uploaded since.

`plan.key` is the sha256 of the plan's canonical JSON (sorted keys, compact), so every
schematic's `kernel-amd64` of one release shares one key, and changing an input that matters
to a kind changes its key. `RECIPE_VERSION` goes into every key: bump it whenever the bytes
a plan produces change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from extensions.embedded_config import (
    EMBEDDED_CONFIG_EXTENSION,
    embedded_config_version,
    make_embedded_config_extension,
)
from extensions.schematic_ext import make_schematic_extension, schematic_author
from schematics import Bootloader, Schematic, canonical_bytes
from workers.assembly.sdboot import enroll_mode
from workers.catalog import check_overlay_options, resolve_overlay
from workers.catalog.records import ORIGIN_UPLOAD
from workers.catalog.resolutions import resolve_durably
from workers.errors import Gone, InvalidRequest
from workers.keys.public_keys import load_public_keys
from workers.keys.secureboot_key import (
    Signer,
    load_signer,
    load_well_known_certs,
)
from workers.pipeline.sandbox_policy import refuse_unsandboxed
from workers.planning.profiles import Kind, Profile, check_buildable
from workers.releases.availability import VersionPolicy
from workers.releases.importer import TALOS_LAYOUT
from workers.releases.modules import module_index, resolve_modules
from workers.releases.stored import Release, blob_key, load_release
from workers.releases.versions import normalize_version, version_key
from workers.settings import Settings
from workers.store import Store

# Bump when an asset's bytes would change for the same plan (3: extension layers made by
# tar2sqfs at zstd -9, firmware members from the tar).
RECIPE_VERSION = 3

SOURCE_CATALOG = "catalog"  # extensions/<digest>.tar, with a catalog record
SOURCE_BLOB = "blob"  # blobs/sha256/<digest> (the generated schematic extension)

WITH_EXTENSIONS = frozenset(
    {Kind.INITRAMFS, Kind.ISO, Kind.IMAGE, Kind.UKI, Kind.INSTALLER, Kind.SYSEXT}
)
WITH_KERNEL_ARGS = frozenset({Kind.CMDLINE, Kind.ISO, Kind.IMAGE, Kind.UKI})
# What boots carries the embedded configuration (upstream's table); the sysext is extensions only.
WITH_EMBEDDED_CONFIG = frozenset({Kind.INITRAMFS, Kind.ISO, Kind.IMAGE, Kind.UKI, Kind.INSTALLER})
EMBEDDED_CONFIG_SINCE = (1, 12, 0)
WITH_BOOTLOADER = frozenset({Kind.ISO, Kind.IMAGE})
WITH_ENROLLMENT = frozenset({Kind.ISO, Kind.IMAGE})
SECTOR_SIZES = (512, 4096)


@dataclass(frozen=True)
class ExtensionInput:
    """One layer source, in schematic order; then the schematic extension, then the
    `embedded-config` one when the schematic has a configuration."""

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
class OverlayInput:
    """The schematic's board overlay: which stored overlay, with which options."""

    name: str
    version: str
    digest: str
    options: tuple[tuple[str, str], ...]
    kernel_args: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "options": [list(item) for item in self.options],
            "kernel_args": list(self.kernel_args),
        }


@dataclass(frozen=True)
class SecureBootInput:
    """What shapes SecureBoot bytes: the signing certificate, and for ISOs and disks the
    enrollment mode and the well-known certificates (digest, "" when not included)."""

    cert: str
    enroll: str = ""
    well_known: str = ""

    def to_json(self) -> dict[str, str]:
        return {"cert": self.cert, "enroll": self.enroll, "well_known": self.well_known}


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
    overlay: OverlayInput | None = None
    secureboot: SecureBootInput | None = None
    # A runnable installer (the release has an installer base) carries the machine's command
    # line, so its platform, extra args and META shape its bytes.
    installer_cmdline: bool = False
    recipe: int = RECIPE_VERSION
    # Extensions (`ns/name version`) withdrawn since this schematic's names were resolved:
    # a finished build of this plan is still served, a new one is refused. Not in the key.
    withdrawn: tuple[str, ...] = ()

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
        if self.kind is Kind.INSTALLER and self.profile.secureboot:
            doc["extra_kernel_args"] = list(self.extra_kernel_args)
        if self.installer_cmdline:
            doc["installer_cmdline"] = {
                "platform": self.profile.platform,
                "extra_kernel_args": list(self.extra_kernel_args),
                "meta": [[key, value] for key, value in self.meta],
            }
        if self.overlay is not None:
            doc["overlay"] = self.overlay.to_json()
        if self.secureboot is not None:
            doc["secureboot"] = self.secureboot.to_json()
        return doc

    def canonical_json(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @cached_property
    def key(self) -> str:
        # Remembered (the plan is immutable): a cache hit asks for it more than once, and
        # encoding and hashing the plan each time was a tenth of the request's CPU.
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def refuse_if_withdrawn(self) -> None:
        """Gone (410) naming the withdrawn extensions, before a new build is started."""
        if self.withdrawn:
            raise Gone(
                f"cannot build {self.profile.path}: extension {', '.join(self.withdrawn)} "
                "was withdrawn"
            )

    def with_path(self, path: str) -> Plan:
        """The same plan under another (alias) asset path."""
        return replace(self, profile=replace(self.profile, path=path))

    def signer(self, settings: Settings) -> Signer | None:
        """The key material a build of this plan signs with (None: nothing to sign)."""
        return load_signer(settings) if self.secureboot is not None else None


def make_plan(
    store: Store,
    schematic: Schematic,
    schematic_id: str,
    version: str,
    profile: Profile,
    settings: Settings,
    *,
    record: bool = True,
) -> Plan:
    """Resolve everything `profile` needs for `schematic` at `version`.

    With `record=False` nothing is written to the store (the web form's final page only shows
    what a build would be): the schematic extension's blob, the first resolution of the
    extension names and the module index are then computed but not kept.

    InvalidRequest names an unknown extension, module or overlay and the version, or a
    customization the asset cannot have; NotFound for an unknown version; NotImplementedYet
    for what this factory does not build yet.
    """
    check_buildable(profile)
    version = normalize_version(version)
    VersionPolicy.from_settings(settings).check(version)
    release = load_release(store, version, profile.arch)
    custom = schematic.customization
    _check_unsupported(schematic, profile, release)
    kind = profile.kind
    has_cmdline = kind in WITH_KERNEL_ARGS or (kind is Kind.INSTALLER and profile.secureboot)
    plan = Plan(profile=profile, version=version, release_digest=release.digest)
    if profile.kind in WITH_EXTENSIONS:
        extensions, withdrawn = _extensions(
            store, schematic, schematic_id, release, settings, record
        )
        embedded: tuple[ExtensionInput, ...] = ()
        if kind in WITH_EMBEDDED_CONFIG and custom.embedded_machine_configuration:
            # After every other layer, as Talos' imager appends it.
            embedded = (_embedded_config(store, schematic, release),)
        plan = replace(
            plan,
            extensions=extensions + embedded,
            withdrawn=withdrawn,
            kernel_modules=_kernel_modules(store, release, custom.kernel_modules, record),
        )
    if profile.kind in WITH_KERNEL_ARGS:
        plan = replace(
            plan,
            extra_kernel_args=tuple(custom.extra_kernel_args),
            meta=tuple((m.key, m.value) for m in custom.meta),
        )
    if kind is Kind.INSTALLER and profile.secureboot:
        plan = replace(plan, extra_kernel_args=tuple(custom.extra_kernel_args))
    elif kind is Kind.INSTALLER and release.installer_base is not None:
        # A runnable installer writes the machine's command line (META as an argument).
        plan = replace(
            plan,
            extra_kernel_args=tuple(custom.extra_kernel_args),
            meta=tuple((m.key, m.value) for m in custom.meta),
            installer_cmdline=True,
        )
    if kind in WITH_BOOTLOADER:
        plan = replace(plan, bootloader=_bootloader(custom.bootloader, profile))
    if kind is Kind.IMAGE:
        plan = replace(plan, sector_size=_sector_size(custom.disk_image.sector_size))
    if has_cmdline and schematic.overlay.name:
        plan = replace(plan, overlay=_overlay(store, schematic, version, settings))
    if profile.secureboot:
        plan = replace(plan, secureboot=_secureboot(store, schematic, profile, settings))
    return plan


def _bootloader(chosen: Bootloader, profile: Profile) -> str:
    if profile.secureboot:
        return str(Bootloader.SD_BOOT)
    if profile.arch == "arm64":
        # arm64 releases carry systemd-boot only (UEFI; upstream's arm64 ISO is UEFI-only too).
        if chosen not in (Bootloader.NONE, Bootloader.SD_BOOT):
            raise InvalidRequest(
                f'customization.bootloader: "{chosen}" is not available for arm64 '
                "(arm64 images boot with sd-boot)"
            )
        return str(Bootloader.SD_BOOT)
    if chosen in (Bootloader.NONE, Bootloader.GRUB):
        return str(Bootloader.GRUB)
    return str(chosen)


def _sector_size(value: int) -> int:
    size = value or SECTOR_SIZES[0]
    if size not in SECTOR_SIZES:
        raise InvalidRequest(
            f"customization.diskImage.sectorSize: {value} is not supported (512 or 4096)"
        )
    return size


def _overlay(store: Store, schematic: Schematic, version: str, settings: Settings) -> OverlayInput:
    record = resolve_overlay(store, version, schematic.overlay.name)
    refuse_unsandboxed(settings, [record.name] if record.origin == ORIGIN_UPLOAD else [])
    options = dict(schematic.overlay.options)
    check_overlay_options(record, options)
    return OverlayInput(
        name=record.name,
        version=record.version,
        digest=record.digest,
        options=tuple(sorted((key, str(value)) for key, value in options.items())),
        kernel_args=record.kernel_args,
    )


def _secureboot(
    store: Store, schematic: Schematic, profile: Profile, settings: Settings
) -> SecureBootInput:
    # The certificate's public half: plans are made on the web side too, which has no key.
    cert = load_public_keys(settings, store).secureboot_cert_fingerprint
    if profile.kind not in WITH_ENROLLMENT:
        return SecureBootInput(cert)
    options = schematic.customization.secureboot
    enroll = enroll_mode(options.enroll_keys)
    well_known = ""
    if options.include_well_known_certificates and enroll != "off":
        well_known = load_well_known_certs(settings).digest
    return SecureBootInput(cert, enroll, well_known)


def _check_unsupported(schematic: Schematic, profile: Profile, release: Release) -> None:
    # Talos reads an embedded configuration from 1.12 on (upstream's quirk and words); the
    # reference OS reads it in every version.
    if (
        schematic.customization.embedded_machine_configuration
        and profile.kind in WITH_EMBEDDED_CONFIG
        and release.origin.get("imported_layout") == TALOS_LAYOUT
        and version_key(release.version)[:3] < EMBEDDED_CONFIG_SINCE
    ):
        raise InvalidRequest(
            f"embedding configuration is not supported for Talos version {release.version}"
        )


def _embedded_config(store: Store, schematic: Schematic, release: Release) -> ExtensionInput:
    """The `embedded-config` layer, stored as a blob as the schematic layer is."""
    config = schematic.customization.embedded_machine_configuration.encode()
    tar = make_embedded_config_extension(config, release.source_date_epoch)
    digest = hashlib.sha256(tar).hexdigest()
    if not store.exists(blob_key(digest)):
        store.put_bytes(blob_key(digest), tar, content_type="application/x-tar")
    version = embedded_config_version(config)
    return ExtensionInput(EMBEDDED_CONFIG_EXTENSION, version, digest, SOURCE_BLOB)


def _extensions(
    store: Store,
    schematic: Schematic,
    schematic_id: str,
    release: Release,
    settings: Settings,
    record: bool,
) -> tuple[tuple[ExtensionInput, ...], tuple[str, ...]]:
    """The layers in order, and the names of those withdrawn since they were resolved."""
    names = schematic.customization.system_extensions.official_extensions
    resolved = resolve_durably(store, schematic_id, release, names, record=record)
    refuse_unsandboxed(
        settings, [r.full_name for r in resolved.records if r.origin == ORIGIN_UPLOAD]
    )
    inputs = [ExtensionInput(r.full_name, r.version, r.digest) for r in resolved.records]
    tar = make_schematic_extension(
        schematic_id,
        canonical_bytes(schematic),
        schematic_author(settings.external_url),
        release.source_date_epoch,
    )
    digest = hashlib.sha256(tar).hexdigest()
    # Content-addressed and idempotent: the build fetches it like any other verified blob.
    if record and not store.exists(blob_key(digest)):
        store.put_bytes(blob_key(digest), tar, content_type="application/x-tar")
    inputs.append(ExtensionInput("schematic", schematic_id, digest, SOURCE_BLOB))
    return tuple(inputs), resolved.withdrawn


def _kernel_modules(
    store: Store, release: Release, names: tuple[str, ...], record: bool
) -> tuple[str, ...]:
    if not names:
        return ()
    # Validates every name (InvalidRequest naming the module and the version).
    resolve_modules(module_index(store, release, record=record), names, release.version)
    return tuple(names)
