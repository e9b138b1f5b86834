"""An arm64 network boot loader that runs the factory's iPXE script, for the arm64 PXE boot.

Debian 12 ships no arm64 iPXE: its `ipxe` package holds x86-64 EFI binaries only (`ipxe.efi`,
`snponly.efi`, machine 0x8664) and `ipxe-qemu` only x86 option ROMs. Debian's arm64 GRUB
(`grub-efi-arm64-bin`, fetched as a file like the reference release's packages, nothing
installed on the host) has UEFI networking and an HTTP client, and GRUB script is close enough
to the factory's iPXE script to run it unchanged: `#!ipxe` is a comment, `initrd` and `boot`
are GRUB commands, and `kernel`/`imgfree` are defined below. GRUB opens the script's
`http://host:port/...` URLs as paths on the HTTP root device, so it sends them as
absolute-form request targets (`GET http://host:port/path`), which the factory serves.

The firmware (AAVMF) fetches the image by TFTP from QEMU's user network (`tftp=`,
`bootfile=`), as a PXE ROM would fetch iPXE; the image's embedded configuration runs in GRUB's
rescue parser (no functions), so it hands over to `normal` with `grub.cfg` from the same TFTP
directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from tests.reference_release import DEB_CACHE
from workers.assembly.run import run_tool
from workers.releases import debian

GRUB_PACKAGE = "grub-efi-arm64-bin"
# UEFI network driver, DHCP/HTTP client, the arm64 Linux loader and what the script needs.
MODULES = ("efinet", "net", "http", "linux", "normal", "echo", "true", "tftp", "configfile")


BOOT_FILE = "grubnetaa64.efi"


def _config(script_url: str) -> str:
    server = urlsplit(script_url).netloc
    return (
        f"set root=(http,{server})\n"
        # iPXE's `kernel URL args...` is GRUB's `linux`; `imgfree` has nothing to free here.
        'function kernel { linux "$@"; }\n'
        "function imgfree { true; }\n"
        f"echo 'factory-test: running {script_url}'\n"
        f"source {script_url}\n"
        "echo 'factory-test: the PXE script did not boot'\n"
    )


def grub_netboot_dir(script_url: str, tftp_host: str, out: Path) -> Path:
    """`out` (a TFTP root): `BOOT_FILE`, a GRUB arm64 EFI image that, booted from
    `tftp_host`, runs the iPXE script at `script_url`; and its `grub.cfg`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "grub.cfg").write_text(_config(script_url))
    apt = debian.apt_for("arm64", DEB_CACHE / "apt-arm64")
    deb = debian.download(debian.describe(GRUB_PACKAGE, "arm64", apt), DEB_CACHE, apt)
    with tempfile.TemporaryDirectory(prefix="grub-arm64-") as tmp:
        tree = debian.extract(deb, Path(tmp) / "grub")
        config = Path(tmp) / "embedded.cfg"
        config.write_text(f"net_bootp\nnormal (tftp,{tftp_host})/grub.cfg\n")
        run_tool(
            [
                "grub-mkimage",
                "--format=arm64-efi",
                f"--directory={tree / 'usr/lib/grub/arm64-efi'}",
                f"--config={config}",
                "--prefix=",
                f"--output={out / BOOT_FILE}",
                *MODULES,
            ]
        )
    return out
