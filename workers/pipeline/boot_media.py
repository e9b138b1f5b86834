"""Assembly of the boot media kinds from a plan: UKIs, ISOs, disk images and installer images.

`workers.pipeline.build_asset` builds the initramfs (with its cached layers) and the command
line, then hands them here in a `BootInputs`. What each kind gets:

- UKI: systemd-stub + sections (`workers.assembly.uki`); SecureBoot: signed with `sbsign`.
- ISO by bootloader (talos-formats §4.8): `grub` → the hybrid GRUB ISO; `sd-boot` (always for
  SecureBoot) → UEFI-only ISO with systemd-boot + UKI (+ enrollment keys and the certificate
  for SecureBoot); `dual-boot` → GRUB for BIOS, systemd-boot + UKI for UEFI. The overlay's ESP
  files go onto the systemd-boot ESP; the GRUB ISO's efi.img holds only GRUB.
- Disk image by bootloader (§4.2-4.3): `workers.assembly.bootdisk`, with the overlay's ESP
  files, raw write and GPT skip, in 512- or 4096-byte sectors.
- Installer: docker archive with `vmlinuz` + `initramfs.xz`, or for SecureBoot the signed
  `systemd-boot.efi` + `vmlinuz.efi` UKI (§8.2).

SecureBoot builds sign systemd-boot and the UKI with the plan's key; sbsign is deterministic,
so SecureBoot assets are as reproducible as the others while the key stays the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from extensions.overlay import PreparedOverlay
from workers.assembly.bootdisk import (
    DUAL_BOOT,
    GRUB,
    SD_BOOT,
    GrubBoot,
    RawBlob,
    make_boot_disk,
    merge_new_files,
)
from workers.assembly.grub import BIOS_MODULES, EFI_MODULES, unpack_grub_modules
from workers.assembly.installer import make_installer_image
from workers.assembly.iso import INITRD_PATH, make_iso
from workers.assembly.iso_fill import fill_file, make_placeholder
from workers.assembly.pe import append_sections
from workers.assembly.pieces import Piece, pieces_size, write_pieces_file
from workers.assembly.sdboot import uki_file_name, write_sdboot_tree
from workers.assembly.uefi_iso import make_uefi_iso
from workers.assembly.uki import OS_NAME, make_uki, os_release
from workers.catalog import fetch_overlay, prepare_overlay
from workers.errors import FactoryError
from workers.keys.secureboot_key import Signer, enrollment_files, sign_pe
from workers.pipeline.workdirs import fresh_dir
from workers.planning.plans import Plan
from workers.planning.profiles import Kind
from workers.releases.installer_base import fetch_installer_base
from workers.releases.manifest import GRUB_BIOS_TAR, GRUB_EFI_TAR, SYSTEMD_BOOT, SYSTEMD_STUB
from workers.releases.stored import Release
from workers.store import Store


class SignerMismatch(FactoryError):
    """The SecureBoot key at build time is not the one the plan was made with."""


@dataclass(frozen=True)
class BootInputs:
    release: Release
    store: Store
    workdir: Path
    kernel: Path
    initramfs_pieces: tuple[Piece, ...]  # `workers.assembly.initramfs_members.initramfs_pieces`
    cmdline: str
    signer: Signer | None
    grub: Future[tuple[Path, Path]] | None = None  # fetch_grub_dirs, when started early

    @functools.cached_property
    def initramfs(self) -> Path:
        """The initramfs as a file of its own, written when a builder first needs one (a GRUB
        ISO writes its bytes straight into the image instead: `build_iso`)."""
        dest = self.workdir / "initramfs" / "initramfs.xz"
        return write_pieces_file(dest, self.initramfs_pieces)

    @property
    def epoch(self) -> int:
        return self.release.source_date_epoch

    @property
    def title(self) -> str:
        return f"{OS_NAME} {self.release.version}"

    def fetch(self, name: str) -> Path:
        return self.release.fetch(self.store, name, self.workdir / name)

    def grub_dirs(self) -> tuple[Path, Path]:
        if self.grub is not None:
            return self.grub.result()
        return fetch_grub_dirs(self.release, self.store, self.workdir)


# What `workers.planning.asset_kinds.ASSET_KINDS` names as a boot media kind's builder.
BootMediaBuilder = Callable[[Plan, BootInputs], Path]


def uses_grub(plan: Plan) -> bool:
    return plan.kind in (Kind.ISO, Kind.IMAGE) and plan.bootloader in (GRUB, DUAL_BOOT)


def fetch_grub_dirs(release: Release, store: Store, workdir: Path) -> tuple[Path, Path]:
    """The release's i386-pc and x86_64-efi GRUB directories, with the modules we embed.
    The tars are read in place from a local store (our own tar reader, no tool, reads them)."""
    bios = unpack_grub_modules(
        release.fetch(store, GRUB_BIOS_TAR, workdir / GRUB_BIOS_TAR, in_place=True),
        workdir / "grub-i386-pc",
        BIOS_MODULES,
    )
    efi = unpack_grub_modules(
        release.fetch(store, GRUB_EFI_TAR, workdir / GRUB_EFI_TAR, in_place=True),
        workdir / "grub-x86_64-efi",
        EFI_MODULES,
    )
    return bios, efi


def check_signer(plan: Plan, signer: Signer | None) -> Signer | None:
    """The signer a SecureBoot plan needs, verified against what the plan recorded."""
    wanted = plan.secureboot
    if wanted is None:
        return None
    if signer is None:
        raise SignerMismatch(f"{plan.profile.path}: a SecureBoot build needs the signing key")
    if signer.key.fingerprint != wanted.cert:
        raise SignerMismatch(
            f"the SecureBoot certificate is {signer.key.fingerprint}, the plan was made for "
            f"{wanted.cert}"
        )
    if wanted.well_known and (
        signer.well_known is None or signer.well_known.digest != wanted.well_known
    ):
        raise SignerMismatch("the well-known SecureBoot certificates changed since planning")
    return signer


def _signed(inputs: BootInputs, path: Path) -> Path:
    if inputs.signer is None:
        return path
    return sign_pe(
        inputs.signer.key, path, path.with_name(path.name + ".signed"), epoch=inputs.epoch
    )


def build_uki(plan: Plan, inputs: BootInputs) -> Path:
    """The (signed, for SecureBoot) UKI of `inputs`."""
    uki = make_uki(
        stub=inputs.fetch(SYSTEMD_STUB),
        kernel=inputs.kernel,
        initrd=inputs.initramfs,
        cmdline=inputs.cmdline,
        osrel=os_release(OS_NAME, inputs.release.version),
        uname=inputs.release.kernel_version,
        out=inputs.workdir / "uki.efi",
        epoch=inputs.epoch,
    )
    return _signed(inputs, uki)


def build_sd_boot(inputs: BootInputs) -> Path:
    """systemd-boot without its trailing COFF symbols (as for the stub), signed for SecureBoot."""
    plain = append_sections(
        inputs.fetch(SYSTEMD_BOOT), inputs.workdir / "sd-boot.efi", [], timestamp=inputs.epoch
    )
    return _signed(inputs, plain)


def sdboot_tree(plan: Plan, inputs: BootInputs, *, for_iso: bool) -> Path:
    """The systemd-boot ESP files for `plan` (keys and certificate for SecureBoot)."""
    tree = inputs.workdir / "sdboot-tree"
    tree.mkdir()
    sb = plan.secureboot
    signer = inputs.signer
    enroll = sb.enroll if sb is not None else None
    auth = None
    if sb is not None and signer is not None and sb.enroll != "off":
        well_known = signer.well_known if sb.well_known else None
        auth = enrollment_files(signer.key, inputs.epoch, well_known)
    return write_sdboot_tree(
        tree,
        sd_boot=build_sd_boot(inputs),
        uki=build_uki(plan, inputs),
        uki_name=uki_file_name(inputs.release.version),
        enroll=enroll,
        auth_files=auth,
        cert_der=signer.key.cert_der if for_iso and signer is not None else None,
        arch=plan.arch,
    )


def prepared_overlay(plan: Plan, inputs: BootInputs) -> PreparedOverlay | None:
    if plan.overlay is None:
        return None
    tar = fetch_overlay(inputs.store, plan.overlay.digest, inputs.workdir / "overlay.tar")
    return prepare_overlay(tar, dict(plan.overlay.options), inputs.workdir / "overlay")


def build_iso(plan: Plan, inputs: BootInputs) -> Path:
    dest = inputs.workdir / "image.iso"

    def grub_iso(uefi_tree: Path | None, initramfs: Path) -> Path:
        """GRUB for BIOS; for UEFI GRUB too, or systemd-boot from `uefi_tree` (dual-boot)."""
        bios, efi = inputs.grub_dirs()
        return make_iso(
            dest,
            workdir=fresh_dir(inputs.workdir / "iso-work"),
            kernel=inputs.kernel,
            initramfs=initramfs,
            cmdline=inputs.cmdline,
            grub_bios_dir=bios,
            grub_efi_dir=efi,
            name=inputs.title,
            epoch=inputs.epoch,
            uefi_tree=uefi_tree,
        )

    if plan.bootloader == GRUB:
        # The initramfs is written once, into the image (`workers.assembly.iso_fill`). Not for
        # dual-boot: its UKI needs the initramfs as a file anyway.
        pieces = inputs.initramfs_pieces
        placeholder = make_placeholder(inputs.workdir / "initrd-placeholder", pieces_size(pieces))
        return fill_file(grub_iso(None, placeholder), INITRD_PATH, pieces)
    tree = sdboot_tree(plan, inputs, for_iso=True)
    overlay = prepared_overlay(plan, inputs)
    if overlay is not None:
        merge_new_files(overlay.esp_dir, tree)
    if plan.bootloader == SD_BOOT:
        return make_uefi_iso(
            dest,
            workdir=fresh_dir(inputs.workdir / "iso-work"),
            esp_tree=tree,
            name=inputs.title,
            epoch=inputs.epoch,
        )
    return grub_iso(tree, inputs.initramfs)


def build_disk(plan: Plan, inputs: BootInputs) -> Path:
    """The raw disk image of `plan` (format conversion and compression come after)."""
    overlay = prepared_overlay(plan, inputs)
    grub = None
    if plan.bootloader in (GRUB, DUAL_BOOT):
        bios, efi = inputs.grub_dirs()
        grub = GrubBoot(inputs.kernel, inputs.initramfs, inputs.cmdline, bios, efi, inputs.title)
    tree = None
    if plan.bootloader in (SD_BOOT, DUAL_BOOT):
        tree = sdboot_tree(plan, inputs, for_iso=False)
    raw_blob = None
    if overlay is not None and overlay.raw_file is not None:
        raw_blob = RawBlob(overlay.raw_file, overlay.raw_offset)
    return make_boot_disk(
        inputs.workdir / "disk.raw",
        workdir=fresh_dir(inputs.workdir / "disk-work"),
        bootloader=plan.bootloader,
        epoch=inputs.epoch,
        meta=dict(plan.meta),
        grub=grub,
        sdboot_tree=tree,
        esp_extra=overlay.esp_dir if overlay is not None else None,
        raw_blob=raw_blob,
        skip_lbas=overlay.partition_offset if overlay is not None else 0,
        sector_size=plan.sector_size,
    )


def build_installer(plan: Plan, inputs: BootInputs) -> Path:
    base = fetch_installer_base(inputs.release, inputs.store, inputs.workdir / "installer-base")
    if plan.profile.secureboot:
        assets = {"systemd-boot.efi": build_sd_boot(inputs), "vmlinuz.efi": build_uki(plan, inputs)}
        name = "installer-secureboot"
    else:
        assets = {"vmlinuz": inputs.kernel, "initramfs.xz": inputs.initramfs}
        name = "installer"
        if plan.installer_cmdline:
            # What the installer puts on the GRUB line (a UKI carries it in .cmdline).
            assets["cmdline"] = inputs.workdir / "installer-cmdline"
            assets["cmdline"].write_text(inputs.cmdline)
    return make_installer_image(
        inputs.workdir / "installer.tar",
        workdir=fresh_dir(inputs.workdir / "installer-work"),
        arch=plan.arch,
        assets=assets,
        repo_tag=f"factory/{name}:{inputs.release.version}",
        epoch=inputs.epoch,
        base_config=base.config_json() if base is not None else None,
        base_layers=base.layers if base is not None else (),
    )
