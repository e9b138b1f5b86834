"""Unified kernel images: systemd-stub + os-release, command line, kernel release, kernel and
initramfs as PE sections (talos-formats §6.1-6.2), byte-reproducible.

Sections are appended in Talos' order `.osrel .cmdline .uname .linux .initrd`; the stub's own
`.sbat` stays as the UKI's SBAT data (Talos does not append a second one either). No `.splash`
and no PCR signature sections (`.pcrpkey`/`.pcrsig`): the reference OS does not measure
itself, so there is nothing to seal against. Secure Boot variants are the same bytes signed
afterwards (`workers.keys.secureboot_key.sign_pe`).
"""

from __future__ import annotations

from pathlib import Path

from workers.assembly.pe import NewSection, append_sections

UKI_SECTIONS = (".osrel", ".cmdline", ".uname", ".linux", ".initrd")
OS_NAME = "Image Factory"


def os_release(name: str, version: str) -> str:
    """The `.osrel` text (Talos' OSReleaseTemplate, without the vendor URLs)."""
    return (
        f'NAME="{name}"\n'
        f"ID={name.lower().replace(' ', '_')}\n"
        f"VERSION_ID={version}\n"
        f'PRETTY_NAME="{name} ({version})"\n'
    )


def make_uki(
    *,
    stub: Path,
    kernel: Path,
    initrd: Path,
    cmdline: str,
    osrel: str,
    uname: str,
    out: Path,
    epoch: int,
) -> Path:
    """Write the UKI `out`: `stub` with the five sections; PE timestamp = `epoch`."""
    if "\n" in cmdline or "\0" in cmdline:
        raise ValueError("a UKI command line is one line without NUL bytes")
    sections = [
        NewSection(".osrel", data=osrel.encode()),
        NewSection(".cmdline", data=cmdline.encode()),
        NewSection(".uname", data=uname.encode()),
        NewSection(".linux", path=kernel),
        NewSection(".initrd", path=initrd),
    ]
    return append_sections(stub, out, sections, timestamp=epoch)
