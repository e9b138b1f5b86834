"""The `rpi_generic` overlay from Debian's Raspberry Pi packages, and a `metal-arm64.raw.xz`
built with it: partition table, firmware, `config.txt` (with the appended option), U-Boot, the
DTBs, systemd-boot where U-Boot's EFI boot looks, and the UKI holding kernel, initramfs and the
overlay's kernel args."""

from __future__ import annotations

import lzma
import shutil
import time
from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.workers.aavmf import QEMU_AARCH64
from tests.workers.assets import build_assets, share_deb_cache, stock_store
from workers.assembly.bootdisk import boot_disk_layout
from workers.assembly.pe import read_pe
from workers.assembly.run import run_tool
from workers.assembly.vfat import list_vfat
from workers.catalog.overlays import list_overlay_records
from workers.catalog.rpi_overlay import KERNEL_ARGS, NAME, install_rpi_overlay
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}

SCHEMATIC = b"""overlay:
  image: factory/rpi_generic
  name: rpi_generic
  options:
    configTxtAppend: dtparam=audio=on
customization:
  extraKernelArgs: [factory.poweroff=1]
"""


@pytest.fixture(scope="module")
def disk(
    reference_release_arm64: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The overlay's `metal-arm64.raw.xz`, decompressed."""
    root = tmp_path_factory.mktemp("rpi")
    store, settings = stock_store(reference_release_arm64, root)
    share_deb_cache(settings)
    messages: list[str] = []
    install_rpi_overlay(settings, store, reference_release_arm64[1], messages.append)
    assert f"overlay {NAME} 1.0.0 ready" in messages
    assert [r.name for r in list_overlay_records(store) if r.name == NAME] == [NAME]

    built = build_assets(store, settings, ["metal-arm64.raw.xz"], root / "out", SCHEMATIC)
    disk = root / "disk.raw"
    with lzma.open(built["metal-arm64.raw.xz"]) as src, disk.open("wb") as dest:
        shutil.copyfileobj(src, dest, 1 << 20)
    return disk


@pytest.fixture(scope="module")
def esp(disk: Path) -> Path:
    """The ESP of `disk`, as a FAT image."""
    listing = run_tool(["sfdisk", "-d", disk]).decode()
    assert "label: gpt" in listing
    assert 'name="EFI"' in listing
    assert 'name="META"' in listing
    placed = boot_disk_layout("sd-boot", 512).by_name("EFI")
    image = disk.with_name("esp.img")
    with disk.open("rb") as f, image.open("wb") as out:
        f.seek(placed.offset)
        out.write(f.read(placed.size))
    return image


def _read(esp: Path, name: str, dest: Path) -> bytes:
    run_tool(["mcopy", "-i", esp, f"::/{name}", dest], env=MTOOLS_ENV)
    return dest.read_bytes()


def test_firmware_u_boot_and_dtbs_are_on_the_boot_partition(esp: Path, tmp_path: Path) -> None:
    files = set(list_vfat(esp))
    firmware = {"bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"}
    dtbs = {"bcm2711-rpi-4-b.dtb", "bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb"}
    assert firmware | dtbs | {"config.txt", "u-boot.bin"} <= files
    assert b"U-Boot 20" in _read(esp, "u-boot.bin", tmp_path / "u-boot.bin")
    assert _read(esp, "bcm2711-rpi-4-b.dtb", tmp_path / "pi4.dtb")[:4] == b"\xd0\x0d\xfe\xed"


def test_config_txt_starts_u_boot_in_64_bit_mode(esp: Path, tmp_path: Path) -> None:
    config = _read(esp, "config.txt", tmp_path / "config.txt").decode()
    lines = config.splitlines()
    assert {"arm_64bit=1", "kernel=u-boot.bin", "enable_uart=1"} <= set(lines)
    assert "device_tree=bcm2711-rpi-4-b.dtb" in lines
    assert lines[-1] == "dtparam=audio=on"  # the configTxtAppend option, last


def test_u_boot_finds_systemd_boot_and_the_uki(esp: Path, tmp_path: Path) -> None:
    files = set(list_vfat(esp))
    assert {"EFI/BOOT/BOOTAA64.EFI", "EFI/Linux/factory-v1.0.0.efi"} <= files
    uki = tmp_path / "uki.efi"
    _read(esp, "EFI/Linux/factory-v1.0.0.efi", uki)
    image = read_pe(uki)
    names = {section.name for section in image.sections}
    assert {".linux", ".initrd", ".cmdline"} <= names
    cmdline = image.data[image.section(".cmdline").raw_offset :][:4096].split(b"\0")[0].decode()
    for arg in (*KERNEL_ARGS, "factory.poweroff=1"):
        assert arg in cmdline.split()


@pytest.mark.boot
def test_u_boot_from_the_image_boots_it_on_a_raspi3b(disk: Path, esp: Path, tmp_path: Path) -> None:
    """QEMU's `raspi3b` cannot run the GPU firmware, so it is given what the firmware would
    load from the boot partition (U-Boot, the board's DTB); U-Boot then finds systemd-boot on
    the SD card, systemd-boot the UKI, and the reference OS reports on the PL011 (ttyAMA0)."""
    u_boot = tmp_path / "u-boot.bin"
    _read(esp, "u-boot.bin", u_boot)
    dtb = tmp_path / "pi3.dtb"
    _read(esp, "bcm2837-rpi-3-b.dtb", dtb)
    card = tmp_path / "sd.raw"
    shutil.copyfile(disk, card)
    run_tool(["qemu-img", "resize", "-q", "-f", "raw", card, "512M"])  # SD: a power of two
    mini_uart = tmp_path / "ttyS1.log"
    started = time.monotonic()
    log = boot_and_capture(
        extra_args=[
            "-machine",
            "raspi3b",
            "-kernel",
            str(u_boot),
            "-dtb",
            str(dtb),
            "-drive",
            f"if=sd,format=raw,file={card}",
            "-serial",
            f"file:{mini_uart}",
        ],
        qemu=QEMU_AARCH64,
        memory_mb=1024,
        cpus=4,
        timeout=900,
    )
    print(f"raspi3b boot took {time.monotonic() - started:.0f} s")
    # U-Boot and systemd-boot talk on the mini UART; the kernel on both.
    assert_in_log(mini_uart.read_text(errors="replace"), "efi/boot/bootaa64.efi")
    assert_in_log(
        log,
        "Machine model: Raspberry Pi 3 Model B",
        "console=tty1 console=ttyS1,115200",
        "factory: boot ok",
    )
