"""Unpacking only the GRUB modules an image embeds gives the same images as the full tree."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from workers.assembly.grub import (
    BIOS_MODULES,
    EFI_MODULES,
    make_grub_image,
    module_closure,
    unpack_grub_modules,
)

pytestmark = pytest.mark.integration
HOST_GRUB = Path("/usr/lib/grub")


def test_module_closure_follows_moddep() -> None:
    moddep = "normal: crypto terminal\ncrypto:\nterminal: extcmd\nextcmd:\nunused: extcmd\n"
    assert module_closure(moddep, ["normal"]) == {"normal", "crypto", "terminal", "extcmd"}


@pytest.mark.parametrize(
    ("platform", "image_format", "modules"),
    [
        ("i386-pc", "i386-pc", BIOS_MODULES),
        ("i386-pc", "i386-pc-eltorito", BIOS_MODULES),
        ("x86_64-efi", "x86_64-efi", EFI_MODULES),
    ],
)
def test_same_image_as_from_the_whole_directory(
    tmp_path: Path, platform: str, image_format: str, modules: tuple[str, ...]
) -> None:
    tar = tmp_path / "grub.tar"
    with tarfile.open(tar, "w") as archive:
        for path in sorted((HOST_GRUB / platform).iterdir()):
            archive.add(path, arcname=path.name)
    unpacked = unpack_grub_modules(tar, tmp_path / "some", modules)
    files = {p.name for p in unpacked.iterdir()}
    assert "kernel.img" in files
    assert "moddep.lst" in files
    assert len([f for f in files if f.endswith(".mod")]) < len(
        list((HOST_GRUB / platform).glob("*.mod"))
    )

    def image(directory: Path, name: str) -> bytes:
        out = make_grub_image(
            directory, tmp_path / name, image_format=image_format, prefix="/x", modules=modules
        )
        return out.read_bytes()

    assert image(unpacked, "some.img") == image(HOST_GRUB / platform, "all.img")
