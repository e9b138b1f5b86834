"""The Raspberry Pi board overlay (`rpi_generic`), assembled from Debian's packages on first
start (a `FIRST_START_STEPS` step; data only, like every overlay here).

Sources, all arm64 packages fetched as files through a private apt index (the host's Debian
mirror with the `non-free-firmware` component, where `raspi-firmware` lives; nothing is
installed): `raspi-firmware` (the GPU firmware: `bootcode.bin`, `start*.elf`, `fixup*.dat`),
`u-boot-rpi` (`rpi_arm64/u-boot.bin`: one 64-bit U-Boot for the Pi 3 and 4 families) and the
release's own kernel package (the Broadcom device trees, so DTBs and kernel always match).

The boot chain of a `metal-arm64.raw.xz` built with this overlay (laid out as upstream's
Raspberry Pi images: firmware, `config.txt`, U-Boot and the DTBs at the root of the boot
partition): the Pi firmware reads `config.txt`, loads the board's DTB and `u-boot.bin`
(`kernel=u-boot.bin`, `arm_64bit=1`); U-Boot's distro boot starts the removable-media EFI
loader `EFI/BOOT/BOOTAA64.EFI` (systemd-boot), which starts the UKI in `EFI/Linux` (kernel,
initramfs and command line, the overlay's kernel args included).

Options (the overlay's templates): `configTxt` replaces `config.txt`, `configTxtAppend` is
added at its end (siderolabs' semantics).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from workers.catalog.overlays import add_overlay, list_overlay_records
from workers.catalog.records import ORIGIN_BUNDLED
from workers.errors import Unavailable
from workers.releases import debian
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import Store

Progress = Callable[[str], None]

NAME = "rpi_generic"
VERSION = "1.0.0"
PACKAGES = ("raspi-firmware", "u-boot-rpi")
COMPONENTS = ("main", "non-free-firmware")
FIRMWARE_DIR = "usr/lib/raspi-firmware"
U_BOOT = "usr/lib/u-boot/rpi_arm64/u-boot.bin"
# The Pi 3 and 4 family device trees of the kernel package (mainline names).
DTB_PATTERNS = ("bcm2711-rpi-*.dtb", "bcm2837-rpi-*.dtb")
# The serial console on the GPIO header (the mini UART while Bluetooth keeps the PL011), and
# the screen; the same as Debian's own Raspberry Pi images.
KERNEL_ARGS = ("console=tty1", "console=ttyS1,115200")

CONFIG_TXT = """\
# Raspberry Pi firmware settings (rpi_generic overlay of Image Factory).
# 64-bit mode; the firmware starts U-Boot, U-Boot starts EFI/BOOT/BOOTAA64.EFI.
arm_64bit=1
kernel=u-boot.bin
# A serial console on the GPIO header at a fixed clock.
enable_uart=1
# The OS has no graphics stack: give the GPU as little memory as allowed.
gpu_mem=16
# The device tree of each board (mainline names, as the Debian kernel ships them).
[pi3]
device_tree=bcm2837-rpi-3-b.dtb
[pi3+]
device_tree=bcm2837-rpi-3-b-plus.dtb
[pi02]
device_tree=bcm2837-rpi-zero-2-w.dtb
[pi4]
device_tree=bcm2711-rpi-4-b.dtb
[pi400]
device_tree=bcm2711-rpi-400.dtb
[cm4]
device_tree=bcm2711-rpi-cm4-io.dtb
[all]
"""


def manifest_yaml(packages: dict[str, str]) -> str:
    built_from = ", ".join(f"{name} {version}" for name, version in sorted(packages.items()))
    return (
        "version: v1alpha1\n"
        "metadata:\n"
        f"  name: {NAME}\n"
        f"  version: {VERSION}\n"
        f'  description: "Raspberry Pi 3/4 family (firmware, U-Boot, DTBs from Debian: '
        f'{built_from})"\n'
        '  compatibility: ">= v1.0.0"\n'
        "kernelArgs:\n" + "".join(f"  - {arg}\n" for arg in KERNEL_ARGS) + "templates:\n"
        "  config.txt:\n"
        "    replaceOption: configTxt\n"
        "    appendOption: configTxtAppend\n"
    )


def install_rpi_overlay(
    settings: Settings, store: Store, release: Release, progress: Progress
) -> None:
    """Add the `rpi_generic` overlay once, from the packages matching the arm64 `release`."""
    if release.arch != "arm64" or any(
        r.name == NAME and r.namespace == settings.extensions_namespace
        for r in list_overlay_records(store)
    ):
        return
    cache_dir = settings.data_dir / "cache" / "debs"
    progress(f"assembling the {NAME} overlay from Debian's Raspberry Pi packages")
    try:
        apt = debian.foreign_apt("arm64", cache_dir / "apt-arm64-firmware", COMPONENTS)
        kernel = f"linux-image-{release.kernel_version}"
        packages = [debian.describe(name, "arm64", apt) for name in (*PACKAGES, kernel)]
    except Unavailable as exc:
        # e.g. an imported Talos release (no Debian kernel package for its DTBs): the service
        # still starts, without this overlay.
        progress(f"skipping the {NAME} overlay: {exc}")
        return
    with tempfile.TemporaryDirectory(prefix="rpi-overlay-", dir=cache_dir) as tmp_name:
        tmp = Path(tmp_name)
        unpacked = {
            p.name: debian.extract(debian.download(p, cache_dir, apt), tmp / "debs" / p.name)
            for p in packages
        }
        source = make_overlay_source(
            tmp / "overlay",
            firmware=unpacked["raspi-firmware"] / FIRMWARE_DIR,
            u_boot=unpacked["u-boot-rpi"] / U_BOOT,
            dtb_dir=unpacked[kernel] / "usr/lib" / kernel / "broadcom",
            packages={p.name: p.version for p in packages},
        )
        overlay = add_overlay(
            store,
            source,
            settings.extensions_namespace,
            origin=ORIGIN_BUNDLED,
            label=f"bundled overlay {NAME}",
            require_compatible=False,
        )
    progress(f"overlay {overlay.name} {overlay.version} ready")


def make_overlay_source(
    root: Path, *, firmware: Path, u_boot: Path, dtb_dir: Path, packages: dict[str, str]
) -> Path:
    """The overlay source tree (see `extensions.overlay`) in `root`."""
    esp = root / "esp"
    esp.mkdir(parents=True)
    blobs = sorted(firmware.glob("*.elf")) + sorted(firmware.glob("*.dat"))
    blobs += [firmware / "bootcode.bin"]
    dtbs = sorted(path for pattern in DTB_PATTERNS for path in dtb_dir.glob(pattern))
    if not dtbs or not (firmware / "bootcode.bin").is_file() or not u_boot.is_file():
        raise Unavailable("the Debian Raspberry Pi packages lack firmware, U-Boot or DTBs")
    for path in [*blobs, *dtbs]:
        shutil.copyfile(path, esp / path.name)
    shutil.copyfile(u_boot, esp / "u-boot.bin")
    (root / "templates").mkdir()
    (root / "templates" / "config.txt").write_text(CONFIG_TXT)
    (root / "manifest.yaml").write_text(manifest_yaml(packages))
    return root
