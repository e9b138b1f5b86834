"""Which assets the final page offers for each kind of hardware (upstream's wizard)."""

from __future__ import annotations

import pytest

from factory.downloads import offer


@pytest.mark.parametrize(
    ("target", "platform", "secureboot", "paths", "pxe", "installer"),
    [
        (
            "metal",
            "metal",
            False,
            [
                "metal-amd64.iso",
                "metal-amd64.raw.zst",
                "metal-amd64.qcow2",
                "kernel-amd64",
                "cmdline-metal-amd64",
                "initramfs-amd64.xz",
                "metal-amd64-uki.efi",
            ],
            "metal-amd64",
            "metal-installer-amd64.tar",
        ),
        (
            "metal",
            "metal",
            True,
            [
                "metal-amd64-secureboot.iso",
                "metal-amd64-secureboot.raw.zst",
                "metal-amd64-secureboot.qcow2",
                "metal-amd64-secureboot-uki.efi",
            ],
            "metal-amd64-secureboot",
            "metal-installer-amd64-secureboot.tar",
        ),
        (
            "cloud",
            "nocloud",
            False,
            ["nocloud-amd64.raw.xz", "nocloud-amd64.iso"],
            "nocloud-amd64",
            "nocloud-installer-amd64.tar",
        ),
        (
            "cloud",
            "equinixMetal",
            False,
            [],
            "equinixMetal-amd64",
            "equinixMetal-installer-amd64.tar",
        ),
        ("cloud", "aws", False, ["aws-amd64.raw.xz"], "", "aws-installer-amd64.tar"),
        ("sbc", "metal", False, ["metal-amd64.raw.xz"], "", "metal-installer-amd64.tar"),
    ],
)
def test_offer(
    target: str,
    platform: str,
    secureboot: bool,
    paths: list[str],
    pxe: str,
    installer: str,
) -> None:
    offered = offer(target, platform, "amd64", secureboot)

    assert [asset.path for asset in offered.assets] == paths
    assert offered.pxe_path == pxe
    assert offered.installer_path == installer
    assert offered.installer_repository == installer.removesuffix(".tar").replace("-amd64", "")
