"""Asset path grammar: the upstream table, its messages, and what this factory builds yet."""

from __future__ import annotations

import pytest

from workers.errors import InvalidRequest
from workers.planning.profiles import (
    PLATFORMS,
    Kind,
    Profile,
    ProfileError,
    check_buildable,
    parse_profile,
)

PARSED = [
    ("kernel-amd64", Kind.KERNEL, "metal", "amd64", False, "", ""),
    ("kernel-arm64", Kind.KERNEL, "metal", "arm64", False, "", ""),
    ("kernel-x86_64", Kind.KERNEL, "metal", "amd64", False, "", ""),
    ("kernel-i386", Kind.KERNEL, "metal", "amd64", False, "", ""),
    ("cmdline-metal-amd64", Kind.CMDLINE, "metal", "amd64", False, "", ""),
    ("cmdline-metal-arm64", Kind.CMDLINE, "metal", "arm64", False, "", ""),
    ("cmdline-aws-amd64-secureboot", Kind.CMDLINE, "aws", "amd64", True, "", ""),
    ("cmdline-digital-ocean-amd64", Kind.CMDLINE, "digital-ocean", "amd64", False, "", ""),
    ("initramfs-amd64.xz", Kind.INITRAMFS, "metal", "amd64", False, "", ""),
    ("initramfs-x86_64.xz", Kind.INITRAMFS, "metal", "amd64", False, "", ""),
    ("metal-amd64.iso", Kind.ISO, "metal", "amd64", False, "", ""),
    ("metal-arm64-secureboot.iso", Kind.ISO, "metal", "arm64", True, "", ""),
    ("nocloud-x86_64.iso", Kind.ISO, "nocloud", "amd64", False, "", ""),
    ("metal-amd64-uki.efi", Kind.UKI, "metal", "amd64", False, "", ""),
    ("metal-amd64-secureboot-uki.efi", Kind.UKI, "metal", "amd64", True, "", ""),
    ("installer-amd64.tar", Kind.INSTALLER, "metal", "amd64", False, "", ""),
    ("installer-arm64-secureboot.tar", Kind.INSTALLER, "metal", "arm64", True, "", ""),
    ("metal-installer-amd64.tar", Kind.INSTALLER, "metal", "amd64", False, "", ""),
    ("aws-installer-arm64.tar", Kind.INSTALLER, "aws", "arm64", False, "", ""),
    ("digital-ocean-installer-amd64.tar", Kind.INSTALLER, "digital-ocean", "amd64", False, "", ""),
    ("metal-amd64.raw", Kind.IMAGE, "metal", "amd64", False, "raw", ""),
    ("metal-arm64.raw.xz", Kind.IMAGE, "metal", "arm64", False, "raw", "xz"),
    ("metal-arm64.raw.zst", Kind.IMAGE, "metal", "arm64", False, "raw", "zst"),
    ("metal-amd64.qcow2", Kind.IMAGE, "metal", "amd64", False, "qcow2", ""),
    ("aws-amd64-secureboot.qcow2.tar.gz", Kind.IMAGE, "aws", "amd64", True, "qcow2", "tar.gz"),
    ("gcp-amd64.raw.tar.gz", Kind.IMAGE, "gcp", "amd64", False, "raw", "tar.gz"),
    ("azure-amd64.vhd", Kind.IMAGE, "azure", "amd64", False, "vhd", ""),
    ("azure-amd64.vhd.xz", Kind.IMAGE, "azure", "amd64", False, "vhd", "xz"),
    ("vmware-amd64.ova", Kind.IMAGE, "vmware", "amd64", False, "ova", ""),
    ("digital-ocean-amd64.raw.gz", Kind.IMAGE, "digital-ocean", "amd64", False, "raw", "gz"),
    # Ours: the schematic's extensions as one sysext image.
    ("extensions-amd64.sqsh", Kind.SYSEXT, "metal", "amd64", False, "", ""),
    ("extensions-x86_64.sqsh", Kind.SYSEXT, "metal", "amd64", False, "", ""),
    # The platform name is not checked while parsing (upstream fails later, in the imager).
    ("foo-amd64.raw", Kind.IMAGE, "foo", "amd64", False, "raw", ""),
]


@pytest.mark.parametrize(
    ("path", "kind", "platform", "arch", "secureboot", "disk_format", "compression"), PARSED
)
def test_parse_profile(
    path: str,
    kind: Kind,
    platform: str,
    arch: str,
    secureboot: bool,
    disk_format: str,
    compression: str,
) -> None:
    profile = parse_profile(path)
    assert (profile.kind, profile.platform, profile.arch, profile.secureboot) == (
        kind,
        platform,
        arch,
        secureboot,
    )
    assert (profile.disk_format, profile.compression) == (disk_format, compression)
    assert profile.path == path


ERRORS = [
    ("kernel-foo", 'invalid architecture: "foo"'),
    ("kernel-", 'invalid architecture: ""'),
    ("initramfs-riscv64.xz", 'invalid architecture: "riscv64"'),
    ("cmdline-metal", 'invalid platform-arch: "metal"'),
    ("metal-rpi_generic-arm64.raw.xz", 'invalid architecture: "rpi_generic-arm64"'),
    ("metal-amd64.vmdk", 'invalid profile path: "metal-amd64.vmdk"'),
    ("metal-amd64.img.xz", 'invalid profile path: "metal-amd64.img"'),
    ("initramfs-amd64.zst", 'invalid profile path: "initramfs-amd64"'),
    ("something", 'invalid profile path: "something"'),
    ("installer-amd64.tgz", 'invalid profile path: "installer-amd64.tgz"'),
    ('a"b.raw', 'invalid platform-arch: "a\\"b"'),
    ("metal-amd64-secureboot-x.iso", 'invalid architecture: "amd64-secureboot-x"'),
]


@pytest.mark.parametrize(("path", "reason"), ERRORS)
def test_parse_errors_use_upstream_messages(path: str, reason: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(path)
    assert str(caught.value) == f"error parsing profile from path: {reason}"
    assert isinstance(caught.value, InvalidRequest)


def test_format_options_follow_upstream_defaults() -> None:
    assert parse_profile("metal-amd64.qcow2").disk_format_options == "cluster_size=8k"
    assert parse_profile("azure-amd64.vhd").disk_format_options == "subformat=fixed,force_size"
    assert parse_profile("metal-amd64.raw").disk_format_options == ""
    alibaba = parse_profile("alibabacloud-amd64.qcow2")
    assert (alibaba.platform, alibaba.disk_format) == ("alibabacloud", "qcow2")
    assert alibaba.disk_format_options == "cluster_size=8k"


def test_aliases_share_their_shape() -> None:
    assert parse_profile("kernel-x86_64").shape() == parse_profile("kernel-amd64").shape()
    assert parse_profile("nocloud-i386.iso").shape() == parse_profile("nocloud-amd64.iso").shape()


def test_shape_leaves_out_what_does_not_shape_the_bytes() -> None:
    assert parse_profile("kernel-amd64").shape() == {"kind": "kernel", "arch": "amd64"}
    assert "platform" not in parse_profile("initramfs-amd64.xz").shape()
    assert "disk_format" not in parse_profile("metal-amd64.iso").shape()
    assert parse_profile("metal-amd64.raw.zst").shape()["compression"] == "zst"
    assert parse_profile("extensions-amd64.sqsh").shape() == {"kind": "sysext", "arch": "amd64"}
    # Only a SecureBoot installer's bytes (its UKI's command line) depend on the platform.
    assert "platform" not in parse_profile("aws-installer-amd64.tar").shape()
    assert parse_profile("aws-installer-amd64-secureboot.tar").shape()["platform"] == "aws"


BUILT = [
    "kernel-amd64",
    "cmdline-metal-amd64",
    "cmdline-aws-amd64",
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "nocloud-amd64.iso",
    "metal-amd64.raw",
    "metal-amd64.raw.xz",
    "metal-amd64.raw.zst",
    "metal-amd64.raw.gz",
    "gcp-amd64.raw.tar.gz",
    "metal-amd64.qcow2",
    "digital-ocean-amd64.raw.gz",
    "metal-amd64-uki.efi",
    "metal-amd64-secureboot-uki.efi",
    "installer-amd64.tar",
    "installer-amd64-secureboot.tar",
    "metal-installer-amd64.tar",
    "metal-amd64-secureboot.iso",
    "metal-amd64-secureboot.raw.zst",
    "cmdline-metal-amd64-secureboot",
    "azure-amd64.vhd",
    "vmware-amd64.ova",
    "extensions-amd64.sqsh",
]


@pytest.mark.parametrize("path", BUILT)
def test_built_kinds_pass_the_check(path: str) -> None:
    check_buildable(parse_profile(path))


ARM64 = [
    "kernel-arm64",
    "metal-arm64.raw.xz",
    "metal-arm64-secureboot-uki.efi",
    "extensions-arm64.sqsh",
]


@pytest.mark.parametrize("path", ARM64)
def test_arm64_kinds_pass_the_check(path: str) -> None:
    check_buildable(parse_profile(path))


def test_aarch64_means_arm64() -> None:
    assert parse_profile("cmdline-metal-aarch64").arch == "arm64"
    assert parse_profile("metal-aarch64.raw.xz").arch == "arm64"


def test_unknown_platform_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest, match='unknown platform "foo"'):
        check_buildable(parse_profile("foo-amd64.raw"))


def test_platform_table_has_upstream_defaults() -> None:
    assert PLATFORMS["aws"].disk_suffix == "raw.xz"
    assert PLATFORMS["gcp"].disk_suffix == "raw.tar.gz"
    assert PLATFORMS["azure"].disk_suffix == "vhd.xz"
    assert PLATFORMS["vmware"].disk_suffix == "ova"
    assert PLATFORMS["digital-ocean"].arches == ("amd64",)
    assert PLATFORMS["equinixMetal"].boot_methods == ("pxe",)
    assert PLATFORMS["alibabacloud"].disk_suffix == "qcow2"
    assert PLATFORMS["alibabacloud"].boot_methods == ("disk",)
    assert PLATFORMS["alibabacloud"].arches == ("amd64", "arm64")
    every_default_parses = [
        parse_profile(f"{p.name}-amd64.{p.disk_suffix}")
        for p in PLATFORMS.values()
        if p.disk_suffix
    ]
    assert all(p.kind is Kind.IMAGE for p in every_default_parses)


def test_profile_is_frozen() -> None:
    profile: Profile = parse_profile("kernel-amd64")
    with pytest.raises(AttributeError):
        profile.arch = "arm64"  # type: ignore[misc]
