"""Kernel arguments per upstream platform name (talos-formats §5.3, Talos ≥ 1.8 values).

A release manifest stores these as `platform_args`; the image builder puts
`talos.platform=<platform>` first, then these, then the release's default `kernel_args`.
"""

from __future__ import annotations

from workers.releases.versions import version_key

_CLOUD = ("console=tty1", "console=ttyS0", "net.ifnames=0")
_DASHBOARDLESS = ("talos.dashboard.disabled=1",)
_NO_KEXEC = ("sysctl.kernel.kexec_load_disabled=1",)

_COMMON: dict[str, tuple[str, ...]] = {
    "aws": _CLOUD,
    "azure": (
        "console=ttyS0,115200n8",
        "earlyprintk=ttyS0,115200",
        "rootdelay=300",
        "net.ifnames=0",
        *_DASHBOARDLESS,
        *_NO_KEXEC,
    ),
    "gcp": ("console=ttyS0", "net.ifnames=0", *_DASHBOARDLESS, *_NO_KEXEC),
    "akamai": ("console=ttyS0", "console=tty0", "console=tty1", "net.ifnames=0"),
    "digital-ocean": ("console=ttyS0", "console=tty0", "console=tty1", "net.ifnames=0"),
    "alibabacloud": _CLOUD,
    "cloudstack": _CLOUD,
    "exoscale": _CLOUD,
    "hcloud": _CLOUD,
    "nocloud": _CLOUD,
    "opennebula": _CLOUD,
    "openstack": _CLOUD,
    "oracle": (*_CLOUD, *_DASHBOARDLESS),
    "scaleway": (*_CLOUD, *_DASHBOARDLESS),
    "upcloud": ("net.ifnames=0",),
    "vultr": ("net.ifnames=0",),
}

_BY_ARCH: dict[str, dict[str, tuple[str, ...]]] = {
    "amd64": {
        "metal": ("console=tty0",),
        "vmware": (
            "talos.config=guestinfo",
            "console=tty0",
            "console=ttyS0",
            "earlyprintk=ttyS0,115200",
            "net.ifnames=0",
        ),
        "equinixMetal": ("console=ttyS1,115200n8",),
    },
    "arm64": {
        "metal": ("console=ttyAMA0", "console=tty0"),
        "vmware": ("talos.config=guestinfo", "console=tty0", "console=ttyAMA0", "net.ifnames=0"),
        "equinixMetal": ("console=ttyAMA0,115200",),
    },
}


def upstream_platform_args(arch: str, version: str | None = None) -> dict[str, tuple[str, ...]]:
    """Platform name → kernel args for `arch` (as of Talos `version`, default: latest)."""
    merged = {**_COMMON, **_BY_ARCH[arch]}
    if version is not None:
        v = _triple(version)
        if arch == "amd64" and v < (1, 8, 0):
            merged["metal"] = ("console=ttyS0", "console=tty0")
        if v >= (1, 14, 0):
            merged["aws"] = (*merged["aws"], "nvme_core.io_timeout=4294967295")
    return dict(sorted(merged.items()))


def talos_default_args(version: str) -> tuple[str, ...]:
    """Upstream `kernel.DefaultArgs` for a Talos version "vX.Y.Z" (used for Talos imports)."""
    v = _triple(version)
    args: list[str] = []
    if v < (1, 14, 0):
        args.append("init_on_alloc=1")
    args += ["slab_nomerge", "pti=on", "consoleblank=0"]
    if v < (1, 14, 0):
        args.append("nvme_core.io_timeout=4294967295")
    args.append("printk.devkmsg=on")
    if v < (1, 11, 0):
        args += ["ima_template=ima-ng", "ima_appraise=fix", "ima_hash=sha512"]
    if v >= (1, 10, 0):
        args.append("selinux=1")
    if v >= (1, 12, 0):
        args.append("module.sig_enforce=1")
    if v >= (1, 13, 0):
        args.append("proc_mem.force_override=never")
    return tuple(args)


def _triple(version: str) -> tuple[int, int, int]:
    major, minor, patch, _, _ = version_key(version)
    return (major, minor, patch)
