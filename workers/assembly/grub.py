"""GRUB images from the release's GRUB files (never the host's /usr/lib/grub).

`make_grub_image` wraps `grub-mkimage -d <release dir>`: an i386-pc `core.img` for a BIOS-boot
partition, an `i386-pc-eltorito` image for CDs, or an x86_64-efi `BOOTX64.EFI`, each with the
modules it needs built in (no module directory is installed next to it).
`patch_bios_boot` does what grub-bios-setup would do for a GPT BIOS-boot partition, without
touching a block device (Talos `bootloader/grub/blocklist.go`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

from extensions.package import unpack_tar
from extensions.tree import Tree
from workers.assembly.run import run_tool

# Built-in modules (Talos `grub/install.go` plus the serial console and iso9660 for CDs).
COMMON_MODULES = (
    "part_gpt",
    "part_msdos",
    "fat",
    "xfs",
    "ext2",
    "iso9660",
    "normal",
    "configfile",
    "linux",
    "boot",
    "search",
    "search_fs_uuid",
    "search_fs_file",
    "search_label",
    "ls",
    "cat",
    "echo",
    "test",
    "help",
    "reboot",
    "halt",
    "all_video",
    "serial",
    "terminal",
)
BIOS_MODULES = (*COMMON_MODULES, "biosdisk")
EFI_MODULES = (*COMMON_MODULES, "efi_gop")

# i386-pc boot.img / diskboot.img offsets (grub `include/grub/i386/pc/boot.h`).
BOOT_CODE_SIZE = 440  # up to the disk signature, so the partition table stays as it is
KERNEL_SECTOR_AT = 0x5C
DRIVE_CHECK_AT = 0x66
BLOCKLIST_START_AT = 0x1F4
SECTOR = 512

# grub.cfg needs these characters escaped in a kernel command line (Talos `grub/encode.go`).
_CFG_SPECIAL = set('\\{}&$|;<>"')


def unpack_grub_dir(tar: Path, dest: Path) -> Path:
    """Unpack a release GRUB tar (the contents of /usr/lib/grub/<platform>/) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    unpack_tar(tar, dest)
    return dest


def unpack_grub_modules(tar: Path, dest: Path, modules: Iterable[str]) -> Path:
    """Unpack from a release GRUB tar only what grub-mkimage needs for `modules`: the
    top-level non-module files (kernel.img, boot images, *.lst) and the `.mod` files of
    `modules` and everything they depend on (moddep.lst). A fraction of the files (creating
    some 600 files is the slow part of a cold build), and the same images come out."""
    dest.mkdir(parents=True, exist_ok=True)

    def needed_files(tree: Tree) -> list[str]:
        moddep = tree.entries.get("moddep.lst")
        if moddep is None or moddep.kind != "file":
            raise ValueError(f"{tar.name}: moddep.lst is not a file")
        needed = module_closure(moddep.read_bytes().decode(), modules)
        return [
            name
            for name, entry in tree.entries.items()
            if "/" not in name
            and entry.kind == "file"
            and (not name.endswith(".mod") or name.removesuffix(".mod") in needed)
        ]

    unpack_tar(tar, dest, needed_files)
    return dest


def module_closure(moddep: str, modules: Iterable[str]) -> set[str]:
    """`modules` and every module they need, from the text of moddep.lst."""
    deps = {}
    for line in moddep.splitlines():
        name, _, rest = line.partition(":")
        deps[name.strip()] = rest.split()
    needed: set[str] = set()
    pending = list(modules)
    while pending:
        module = pending.pop()
        if module not in needed:
            needed.add(module)
            pending.extend(deps.get(module, []))
    return needed


def make_grub_image(
    grub_dir: Path,
    dest: Path,
    *,
    image_format: str,
    prefix: str,
    modules: tuple[str, ...],
    early_config: Path | None = None,
) -> Path:
    """`grub-mkimage` with the release's modules (`-d grub_dir`); EFI images xz-compressed."""
    argv: list[str | Path] = ["grub-mkimage", "-d", grub_dir, "-O", image_format, "-o", dest]
    argv += ["-p", prefix]
    if image_format.endswith("-efi"):
        argv += ["-C", "xz"]
    if early_config is not None:
        argv += ["-c", early_config]
    run_tool([*argv, *modules])
    return dest


def patch_bios_boot(boot_img: bytes, core_img: bytes, core_lba: int) -> tuple[bytes, bytes]:
    """Return (MBR boot code, patched core.img) for a core.img written at `core_lba`.

    boot.img learns where core.img starts (0x5C) and skips its floppy drive check (0x66, as
    grub-install does on GPT); core.img's first blocklist entry starts one sector later (0x1F4),
    its length already filled in by grub-mkimage.
    """
    code = bytearray(boot_img[:BOOT_CODE_SIZE])
    struct.pack_into("<Q", code, KERNEL_SECTOR_AT, core_lba)
    code[DRIVE_CHECK_AT : DRIVE_CHECK_AT + 2] = b"\x90\x90"
    core = bytearray(core_img)
    struct.pack_into("<Q", core, BLOCKLIST_START_AT, core_lba + 1)
    return bytes(code), bytes(core)


def escape_cmdline(cmdline: str) -> str:
    return "".join("\\" + c if c in _CFG_SPECIAL else c for c in cmdline)


def grub_config(*, title: str, kernel: str, initrd: str, cmdline: str) -> str:
    """One boot entry, chosen at once, with GRUB on the serial port and the screen."""
    return (
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\n"
        "terminal_output serial console\n"
        "set default=0\n"
        "set timeout=0\n"
        "\n"
        f'menuentry "{title}" {{\n'
        "  set gfxpayload=text\n"
        f"  linux {kernel} {escape_cmdline(cmdline)}\n"
        f"  initrd {initrd}\n"
        "}\n"
    )
