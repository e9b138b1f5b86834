"""The reference release's installer base: what `usr/bin/installer` needs to install the
reference OS on a disk from inside the reference OS itself.

One gzip layer (sorted deterministic tar, mtime = SOURCE_DATE_EPOCH):
- `usr/bin/busybox` and `usr/bin/installer` (the busybox shell script `reference/installer`);
- `usr/lib/installer/modules/*.ko` + `load-order`: XFS and its dependencies, to mount BOOT;
- `usr/lib/installer/disk.img` + `disk.map`: the factory's GRUB disk layout (GPT, MBR boot
  code, BIOS core.img, the ESP with GRUB EFI, an XFS BOOT holding placeholder files, an empty
  META) as its non-zero 4 KiB blocks; `disk.map` lines are `<disk block> <img block> <count>`,
  so the guest writes them with `dd bs=4096` and never needs mkfs or grub-install. The kernel,
  initramfs and command line come from the installer image's assets layer and go into BOOT.

Config: entrypoint `/usr/bin/installer`, env `VERSION=<v>`, label `alpha.talos.dev/version`,
as Talos' installer-base has.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from workers.assembly.bootdisk import GRUB, GrubBoot, make_boot_disk
from workers.assembly.compress import Codec, compress_file
from workers.assembly.grub import BIOS_MODULES, EFI_MODULES, unpack_grub_modules
from workers.assembly.installer import LAYER_GZIP_LEVEL, rfc3339
from workers.releases.installer_base import BaseImage
from workers.releases.modules import ModuleIndex, resolve_modules
from workers.releases.reference_os import normalize_dir_modes, script
from workers.releases.tree_tar import write_tree_tar

BLOCK = 4096
# Runs of non-zero blocks closer than this are written as one (fewer dd calls in the guest).
MERGE_GAP_BLOCKS = 16
INSTALLER_MODULES = ("crc32c_generic", "libcrc32c", "xfs")
ENTRYPOINT = "/usr/bin/installer"


def make_reference_installer_base(
    workdir: Path,
    *,
    busybox: Path,
    grub_tars: tuple[Path, Path],
    modules_dir: Path,
    index: ModuleIndex,
    version: str,
    arch: str,
    epoch: int,
) -> BaseImage:
    """Build the base image in `workdir` (see the module docstring)."""
    root = workdir / "installer-root"
    lib = root / "usr/lib/installer"
    (lib / "modules").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    shutil.copyfile(busybox, root / "usr/bin/busybox")
    (root / "usr/bin/busybox").chmod(0o755)
    (root / "usr/bin/installer").write_bytes(script("installer"))
    (root / "usr/bin/installer").chmod(0o755)

    available = [m for m in INSTALLER_MODULES if m in index.modules]
    order = resolve_modules(index, available, version)
    for name in order:
        shutil.copyfile(modules_dir / index.modules[name].path, lib / "modules" / f"{name}.ko")
    (lib / "modules/load-order").write_text("".join(f"{name}\n" for name in order))

    disk = _layout_disk(workdir, grub_tars, version, epoch)
    _write_blocks(disk, lib / "disk.img", lib / "disk.map")
    disk.unlink()
    normalize_dir_modes(root)

    layer_tar = write_tree_tar(root, workdir / "installer-base.tar", "", epoch)
    diff_id = hashlib.sha256(layer_tar.read_bytes()).hexdigest()
    layer = compress_file(
        layer_tar, workdir / "installer-base.tar.gz", Codec.GZIP, level=LAYER_GZIP_LEVEL
    )
    layer_tar.unlink()
    shutil.rmtree(root)
    config = {
        "architecture": arch,
        "os": "linux",
        "created": rfc3339(epoch),
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Env": [f"VERSION={version}"],
            "Labels": {"alpha.talos.dev/version": version},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": rfc3339(epoch), "created_by": "image-factory: installer base"}],
    }
    data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return BaseImage(config=data, layers=(layer,))


def _layout_disk(workdir: Path, grub_tars: tuple[Path, Path], version: str, epoch: int) -> Path:
    """The factory's GRUB disk with placeholder boot files (the installer replaces them)."""
    work = workdir / "installer-disk"
    work.mkdir()
    placeholder = work / "placeholder"
    placeholder.write_bytes(b"replaced by the installer\n")
    bios = unpack_grub_modules(grub_tars[0], work / "grub-bios", BIOS_MODULES)
    efi = unpack_grub_modules(grub_tars[1], work / "grub-efi", EFI_MODULES)
    disk = make_boot_disk(
        workdir / "installer-disk.raw",
        workdir=work,
        bootloader=GRUB,
        epoch=epoch,
        meta={},
        grub=GrubBoot(placeholder, placeholder, "", bios, efi, f"Reference OS {version}"),
    )
    shutil.rmtree(work)
    return disk


def _write_blocks(disk: Path, img: Path, block_map: Path) -> None:
    """Keep the non-zero 4 KiB blocks of `disk` in `img`, where they go in `block_map`."""
    zero = bytes(BLOCK)
    runs: list[list[int]] = []  # [disk block, count]
    with disk.open("rb") as f:
        block = 0
        while chunk := f.read(BLOCK):
            if chunk != zero[: len(chunk)]:
                if runs and block - (runs[-1][0] + runs[-1][1]) <= MERGE_GAP_BLOCKS:
                    runs[-1][1] = block - runs[-1][0] + 1
                else:
                    runs.append([block, 1])
            block += 1
    lines = []
    with disk.open("rb") as f, img.open("wb") as out:
        src = 0
        for start, count in runs:
            f.seek(start * BLOCK)
            data = f.read(count * BLOCK)
            out.write(data.ljust(count * BLOCK, b"\0"))
            lines.append(f"{start} {src} {count}\n")
            src += count
    block_map.write_text("".join(lines))
