"""arm64 end to end: the reference release from Debian's arm64 packages (the host untouched),
every asset kind built from it, and the ISO, raw disk, UKI and SecureBoot UKI (our
certificate enrolled as PK, KEK and db, Secure Boot on) booted under
`qemu-system-aarch64 -M virt` (TCG) with AAVMF, each showing the extensions, modules, META,
schematic ID and `boot ok`.
"""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.boot import assert_in_log, boot_and_capture
from tests.workers.aavmf import AAVMF_VARS_MS, QEMU_AARCH64, virt_args, virtio_cdrom_args
from tests.workers.assets import SCHEMATIC, build_assets, stock_store
from tests.workers.uefi_vm import SECURE_BOOT_ON, enrolled_vars, esp_disk, schematic_lines
from workers.assembly.bootdisk import boot_disk_layout
from workers.assembly.run import run_tool
from workers.assembly.vfat import list_vfat
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.releases.manifest import GRUB_FILES, release_files
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

SIGNING_CERT = "uki-signing-cert.pem"  # beside the assets in `built`: the factory's certificate

# The reference OS prints its report on the last console: the PL011 on `virt`.
ARM64_SCHEMATIC = SCHEMATIC.replace(b"console=ttyS0", b"console=ttyAMA0")
ASSETS = [
    "kernel-arm64",
    "initramfs-arm64.xz",
    "cmdline-metal-arm64",
    "metal-arm64-uki.efi",
    "metal-arm64-secureboot-uki.efi",
    "metal-arm64.iso",
    "metal-arm64.raw",
    "installer-arm64.tar",
    "extensions-arm64.sqsh",
]


@pytest.fixture(scope="module")
def built(
    reference_release_arm64: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arm64")
    store, settings = stock_store(reference_release_arm64, root)
    built = build_assets(store, settings, ASSETS, root / "out", ARM64_SCHEMATIC)
    built[SIGNING_CERT] = load_or_create_secureboot_key(settings).cert_path
    return built


def _sid() -> str:
    return schematic_id(parse_schematic(ARM64_SCHEMATIC))


def test_release_is_arm64_and_the_host_is_untouched(
    reference_release_arm64: tuple[LocalStore, Release],
) -> None:
    _, release = reference_release_arm64
    assert release.arch == "arm64"
    assert sorted(release.files) == sorted(release_files("arm64"))
    assert not set(GRUB_FILES) & set(release.files)
    assert release.kernel_version.endswith("-arm64")
    assert release.kernel_args[-1] == "console=ttyAMA0,115200"
    # No foreign architecture was added to the host's dpkg, nor an arm64 index to its apt.
    assert "arm64" not in run_tool(["dpkg", "--print-foreign-architectures"]).decode()
    assert not list(Path("/var/lib/apt/lists").glob("*binary-arm64*"))


def test_assets_are_arm64(built: dict[str, Path], tmp_path: Path) -> None:
    kernel = built["kernel-arm64"].read_bytes()
    assert kernel[0x38:0x3C] == b"ARMd"  # the arm64 Image header magic
    assert "console=ttyAMA0" in built["cmdline-metal-arm64"].read_text()
    uki = built["metal-arm64-uki.efi"].read_bytes()
    pe = int.from_bytes(uki[0x3C:0x40], "little")
    assert uki[pe + 4 : pe + 6] == (0xAA64).to_bytes(2, "little")  # IMAGE_FILE_MACHINE_ARM64
    with tarfile.open(built["installer-arm64.tar"]) as tar:
        configs = [m for m in tar.getmembers() if m.name.endswith(".json")]
        texts = [tar.extractfile(m).read() for m in configs]  # type: ignore[union-attr]
    assert any(b'"architecture":"arm64"' in t.replace(b" ", b"") for t in texts)
    listing = run_tool(["unsquashfs", "-lls", built["extensions-arm64.sqsh"]]).decode()
    assert "extension-release.d" in listing


def test_raw_disk_has_the_sd_boot_layout_and_bootaa64(
    built: dict[str, Path], tmp_path: Path
) -> None:
    disk = built["metal-arm64.raw"]
    layout = boot_disk_layout("sd-boot", 512)
    assert [p.partition.name for p in layout.partitions] == ["EFI", "META"]
    esp = layout.by_name("EFI")
    with disk.open("rb") as f, (tmp_path / "esp.img").open("wb") as out:
        f.seek(esp.offset)
        out.write(f.read(esp.size))
    files = list_vfat(tmp_path / "esp.img")
    assert "EFI/BOOT/BOOTAA64.EFI" in files
    assert "EFI/BOOT/BOOTX64.EFI" not in files


def _boot(drive_args: list[str], tmp_path: Path, variables: Path | None = None) -> str:
    started = time.monotonic()
    firmware = virt_args(tmp_path, variables)
    log = boot_and_capture(extra_args=[*firmware, *drive_args], qemu=QEMU_AARCH64)
    print(f"arm64 boot took {time.monotonic() - started:.0f} s")  # the closing note's numbers
    return log


@pytest.mark.boot
def test_iso_boots_under_aavmf(built: dict[str, Path], tmp_path: Path) -> None:
    log = _boot(virtio_cdrom_args(built["metal-arm64.iso"]), tmp_path)
    assert_in_log(log, "EFI stub: Booting Linux Kernel", *schematic_lines(_sid()))


@pytest.mark.boot
def test_raw_disk_boots_under_aavmf(built: dict[str, Path], tmp_path: Path) -> None:
    drive = f"file={built['metal-arm64.raw']},format=raw,if=virtio,snapshot=on"
    log = _boot(["-drive", drive], tmp_path)
    assert_in_log(log, *schematic_lines(_sid()), "factory: module dummy loaded")


@pytest.mark.boot
def test_uki_boots_under_aavmf(built: dict[str, Path], tmp_path: Path) -> None:
    disk = esp_disk(built["metal-arm64-uki.efi"], tmp_path / "uki.raw", "BOOTAA64.EFI")
    log = _boot(["-drive", f"file={disk},format=raw,if=virtio"], tmp_path)
    assert_in_log(log, *schematic_lines(_sid()))


@pytest.mark.boot
def test_secureboot_uki_boots_with_our_keys_enrolled(
    built: dict[str, Path], tmp_path: Path
) -> None:
    cert = built[SIGNING_CERT]
    variables = enrolled_vars(cert, tmp_path / "vars.fd", AAVMF_VARS_MS, replacing=True)
    uki = built["metal-arm64-secureboot-uki.efi"]
    disk = esp_disk(uki, tmp_path / "uki.raw", "BOOTAA64.EFI")
    log = _boot(["-drive", f"file={disk},format=raw,if=virtio"], tmp_path, variables)
    assert_in_log(log, SECURE_BOOT_ON, *schematic_lines(_sid()))
