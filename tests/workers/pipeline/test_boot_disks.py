"""Bootloader variants, 4 KiB sectors and the board overlay, built through plans and booted.

- `bootloader: sd-boot` and `dual-boot` disks boot under OVMF, dual-boot also under SeaBIOS
  (GRUB from the BIOS partition); both print META from the META partition, dual-boot also
  0x11 = dual-boot.
- A `sectorSize: 4096` disk has a GPT in 4 KiB LBAs (fdisk -b 4096; util-linux 2.38's sfdisk
  has no --sector-size, and reads a plain file as 512-byte sectors) and boots under OVMF from
  a virtio disk with 4 KiB logical and physical blocks.
- A disk with the bundled `testboard` overlay shows its files on the ESP (mdir), its raw
  marker at byte 0x8000, the entry array at LBA 2 + 128, and boots (SeaBIOS) with the
  overlay's kernel argument on the command line.
- sd-boot ISOs boot under OVMF, dual-boot ISOs under OVMF and SeaBIOS.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.boot import assert_in_log, boot_and_capture
from tests.workers.assets import SCHEMATIC, build_assets, stock_store
from tests.workers.uefi_vm import cdrom_args, firmware_args, schematic_lines, setup_mode_vars
from workers.assembly.bootdisk import boot_disk_layout
from workers.assembly.run import run_tool
from workers.assembly.vfat import list_vfat
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

SD_BOOT = SCHEMATIC + b"  bootloader: sd-boot\n"
DUAL_BOOT = SCHEMATIC + b"  bootloader: dual-boot\n"
FOUR_K = DUAL_BOOT + b"  diskImage:\n    sectorSize: 4096\n"
OVERLAY = (
    SCHEMATIC
    + b"""overlay:
  image: factory/testboard
  name: testboard
  options:
    configTxtAppend: extra=1
"""
)
SCHEMATICS = {"sd-boot": SD_BOOT, "dual-boot": DUAL_BOOT, "4k": FOUR_K, "overlay": OVERLAY}
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def _sid(text: bytes) -> str:
    return schematic_id(parse_schematic(text))


@pytest.fixture(scope="module")
def built(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """`<schematic>/<asset path>` → file, for every schematic above."""
    root = tmp_path_factory.mktemp("disk-variants")
    store, settings = stock_store(reference_release, root)
    paths = {
        "sd-boot": ["metal-amd64.raw", "metal-amd64.iso"],
        "dual-boot": ["metal-amd64.raw", "metal-amd64.iso"],
        "4k": ["metal-amd64.raw"],
        "overlay": ["metal-amd64.raw"],
    }
    found = {}
    for name, assets in paths.items():
        out = build_assets(store, settings, assets, root / name, SCHEMATICS[name])
        found.update({f"{name}/{path}": file for path, file in out.items()})
    return found


def _partition(disk: Path, bootloader: str, name: str, dest: Path, skip: int = 0) -> Path:
    placed = boot_disk_layout(bootloader, 512, skip).by_name(name)
    with disk.open("rb") as f, dest.open("wb") as out:
        f.seek(placed.offset)
        out.write(f.read(placed.size))
    return dest


def test_4k_disk_has_a_4k_gpt(built: dict[str, Path]) -> None:
    disk = built["4k/metal-amd64.raw"]
    listing = run_tool(["fdisk", "-b", "4096", "-l", disk]).decode()
    assert "Sector size (logical/physical): 4096 bytes / 4096 bytes" in listing
    assert "Disklabel type: gpt" in listing
    with disk.open("rb") as f:
        f.seek(4096)
        header = f.read(92)
    assert header[:8] == b"EFI PART"
    layout = boot_disk_layout("dual-boot", 4096)
    assert struct.unpack_from("<Q", header, 32)[0] == layout.last_lba  # backup header LBA
    assert [p.partition.name for p in layout.partitions] == ["EFI", "BIOS", "BOOT", "META"]


def test_overlay_files_raw_bytes_and_entry_array(built: dict[str, Path], tmp_path: Path) -> None:
    disk = built["overlay/metal-amd64.raw"]
    assert "No problems found" in run_tool(["sgdisk", "-v", disk]).decode()
    with disk.open("rb") as f:
        f.seek(0x8000)
        assert f.read(34) == b"IMAGE-FACTORY-TESTBOARD-RAW-MARKER"
        f.seek(512)
        header = f.read(92)
    assert struct.unpack_from("<Q", header, 72)[0] == 2 + 128
    esp = _partition(disk, "grub", "EFI", tmp_path / "esp.img", skip=128)
    files = list_vfat(esp)
    assert "testboard/README.txt" in files
    assert "EFI/BOOT/BOOTX64.EFI" in files
    config = run_tool(["mtype", "-i", esp, "::/config.txt"], env=MTOOLS_ENV).decode()
    assert config.endswith("console=serial0\nextra=1\n")


def test_sd_boot_disk_esp(built: dict[str, Path], tmp_path: Path) -> None:
    esp = _partition(built["sd-boot/metal-amd64.raw"], "sd-boot", "EFI", tmp_path / "esp.img")
    files = list_vfat(esp)
    assert {"EFI/BOOT/BOOTX64.EFI", "EFI/Linux/factory-v1.0.0.efi", "loader/loader.conf"} <= set(
        files
    )
    assert not any(path.startswith("loader/keys") for path in files)  # not SecureBoot


def _virtio(disk: Path, block: int = 512) -> list[str]:
    return [
        "-drive",
        f"file={disk},format=raw,if=none,id=d0,snapshot=on",
        "-device",
        f"virtio-blk-pci,drive=d0,logical_block_size={block},physical_block_size={block}",
    ]


def _ovmf(workdir: Path) -> list[str]:
    return firmware_args(setup_mode_vars(workdir / "vars.fd"), secure=False)


def _cases(built: dict[str, Path]) -> dict[str, Callable[[Path], str]]:
    def disk(name: str, ovmf: bool, block: int = 512) -> Callable[[Path], str]:
        image = built[f"{name}/metal-amd64.raw"]
        return lambda workdir: boot_and_capture(
            extra_args=[*_virtio(image, block), *(_ovmf(workdir) if ovmf else [])]
        )

    def iso(name: str, ovmf: bool) -> Callable[[Path], str]:
        image = built[f"{name}/metal-amd64.iso"]
        return lambda workdir: boot_and_capture(
            extra_args=[*cdrom_args(image), *(_ovmf(workdir) if ovmf else [])]
        )

    return {
        "sd-boot-disk-ovmf": disk("sd-boot", ovmf=True),
        "dual-boot-disk-ovmf": disk("dual-boot", ovmf=True),
        "dual-boot-disk-seabios": disk("dual-boot", ovmf=False),
        "4k-disk-ovmf": disk("4k", ovmf=True, block=4096),
        "overlay-disk-seabios": disk("overlay", ovmf=False),
        "sd-boot-iso-ovmf": iso("sd-boot", ovmf=True),
        "dual-boot-iso-ovmf": iso("dual-boot", ovmf=True),
        "dual-boot-iso-seabios": iso("dual-boot", ovmf=False),
    }


@pytest.fixture(scope="module")
def boot_logs(built: dict[str, Path]) -> Iterator[dict[str, str]]:
    cases = _cases(built)
    with tempfile.TemporaryDirectory(prefix="disk-boots-") as tmp:

        def run(name: str) -> tuple[str, str]:
            workdir = Path(tmp) / name
            workdir.mkdir()
            return name, cases[name](workdir)

        with ThreadPoolExecutor(max_workers=2) as pool:
            yield dict(pool.map(run, cases))


@pytest.mark.boot
@pytest.mark.parametrize(
    ("case", "schematic"),
    [
        ("sd-boot-disk-ovmf", "sd-boot"),
        ("dual-boot-disk-ovmf", "dual-boot"),
        ("dual-boot-disk-seabios", "dual-boot"),
        ("4k-disk-ovmf", "4k"),
        ("overlay-disk-seabios", "overlay"),
    ],
)
def test_disks_boot(case: str, schematic: str, boot_logs: dict[str, str]) -> None:
    log = boot_logs[case]
    assert_in_log(log, *schematic_lines(_sid(SCHEMATICS[schematic])))
    # Disks keep META in their META partition, not on the command line.
    assert "INSTALLER_META_BASE64" not in log.split("factory:", 1)[0]
    if schematic in ("dual-boot", "4k"):
        assert_in_log(log, "factory: meta 0x11=dual-boot")
    if schematic == "overlay":
        assert_in_log(log, "factory.board=testboard")


@pytest.mark.boot
@pytest.mark.parametrize(
    ("case", "schematic"),
    [
        ("sd-boot-iso-ovmf", "sd-boot"),
        ("dual-boot-iso-ovmf", "dual-boot"),
        ("dual-boot-iso-seabios", "dual-boot"),
    ],
)
def test_isos_boot(case: str, schematic: str, boot_logs: dict[str, str]) -> None:
    log = boot_logs[case]
    assert_in_log(log, *schematic_lines(_sid(SCHEMATICS[schematic])))
    assert "INSTALLER_META_BASE64" in log.split("factory:", 1)[0]
