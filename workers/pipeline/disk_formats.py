"""The raw disk converted to each disk format of `workers.planning.asset_kinds.DISK_FORMATS`.

Every converter has the signature of `DiskConverter`, so the table names it and the build
calls it without knowing the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from workers.assembly.ova import make_ova
from workers.assembly.qemu_img import convert_disk
from workers.assembly.uki import OS_NAME
from workers.assembly.vhd import make_vhd
from workers.pipeline.workdirs import fresh_dir
from workers.planning.asset_kinds import DISK_FORMATS, load_function


class DiskConverter(Protocol):
    def __call__(
        self, raw: Path, dest: Path, *, options: str, workdir: Path, epoch: int
    ) -> Path: ...


def to_qcow2(raw: Path, dest: Path, *, options: str, workdir: Path, epoch: int) -> Path:
    return convert_disk(raw, dest, "qcow2", options)


def to_vhd(raw: Path, dest: Path, *, options: str, workdir: Path, epoch: int) -> Path:
    # make_vhd always writes a fixed VHD: the options the profile carries say the same.
    return make_vhd(raw, dest, epoch=epoch)


def to_ova(raw: Path, dest: Path, *, options: str, workdir: Path, epoch: int) -> Path:
    return make_ova(raw, dest, workdir=fresh_dir(workdir / "ova-work"), name=OS_NAME, epoch=epoch)


def converter_for(disk_format: str) -> DiskConverter | None:
    """The converter of `disk_format`, None for the raw disk itself."""
    reference = DISK_FORMATS[disk_format].converter
    return cast(DiskConverter, load_function(reference)) if reference else None
