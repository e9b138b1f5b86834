"""Kernel command line: go-procfs merge rules, upstream golden strings, META encoding."""

from __future__ import annotations

import base64
import gzip

import pytest

from workers.planning.cmdline import KernelArgs, encode_meta, make_cmdline

OVERWRITE_CONSOLE = frozenset({"console"})


@pytest.mark.parametrize(
    ("initial", "args", "overwrite", "negate", "expected"),
    [
        (
            "ip=dhcp console=x root=/dev/sdc",
            ["root=/dev/sda", "root=/dev/sdb"],
            frozenset(),
            False,
            "ip=dhcp console=x root=/dev/sdc root=/dev/sda root=/dev/sdb",
        ),
        ("root=/dev/sdb", ["this=that=those"], frozenset(), False, "root=/dev/sdb this=that=those"),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["console=tty0", "console=ttyS1,115200", "nogui"],
            frozenset(),
            False,
            "console=tty0 console=ttyS0 console=tty0 console=ttyS1,115200 root=/dev/sdb nogui",
        ),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["console=tty0", "console=ttyS1,115200", "nogui"],
            OVERWRITE_CONSOLE,
            False,
            "console=tty0 console=ttyS1,115200 root=/dev/sdb nogui",
        ),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["-console", "nogui"],
            OVERWRITE_CONSOLE,
            True,
            "root=/dev/sdb nogui",
        ),
        (
            "console=tty0 console=ttyS0,9600 root=/dev/sdb",
            ["-console=ttyS0,9600", "nogui"],
            frozenset(),
            True,
            "console=tty0 root=/dev/sdb nogui",
        ),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["-console", "nogui", "console=ttyAMA0"],
            OVERWRITE_CONSOLE,
            True,
            "root=/dev/sdb nogui console=ttyAMA0",
        ),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["-console=tty0", "nogui", "console=ttyAMA0"],
            frozenset(),
            True,
            "console=ttyS0 console=ttyAMA0 root=/dev/sdb nogui",
        ),
        (
            "console=tty0 console=ttyS0 root=/dev/sdb",
            ["-console=tty0", "nogui", "console=ttyAMA0"],
            OVERWRITE_CONSOLE,
            True,
            "console=ttyAMA0 root=/dev/sdb nogui",
        ),
        # Without negation a `-key` is just another key; a lone `-` never negates.
        ("a=1", ["-a"], frozenset(), False, "a=1 -a"),
        ("a=1", ["-"], frozenset(), True, "a=1 -"),
        # `k` and `k=` are both one empty value, rendered bare.
        ("", ["quiet", "splash="], frozenset(), False, "quiet splash"),
    ],
)
def test_append_all_follows_go_procfs(
    initial: str, args: list[str], overwrite: frozenset[str], negate: bool, expected: str
) -> None:
    cmdline = KernelArgs(initial)
    cmdline.append_all(args, overwrite=overwrite, delete_negated=negate)
    assert str(cmdline) == expected


def test_set_all_replaces_in_place() -> None:
    cmdline = KernelArgs("root=/dev/sdb root=/dev/sdc aye=sir")
    cmdline.set_all(["root=/dev/mmcblk0"])
    assert str(cmdline) == "root=/dev/mmcblk0 aye=sir"
    empty = KernelArgs()
    empty.set_all(["root=/dev/sda", "root=/dev/sdb"])
    assert str(empty) == "root=/dev/sda root=/dev/sdb"


DEFAULTS_1_13 = [
    "init_on_alloc=1",
    "slab_nomerge",
    "pti=on",
    "consoleblank=0",
    "nvme_core.io_timeout=4294967295",
    "printk.devkmsg=on",
    "selinux=1",
    "module.sig_enforce=1",
    "proc_mem.force_override=never",
]
DEFAULTS_1_14 = [
    "slab_nomerge",
    "pti=on",
    "consoleblank=0",
    "printk.devkmsg=on",
    "selinux=1",
    "module.sig_enforce=1",
    "proc_mem.force_override=never",
]


def test_golden_talos_1_13_metal() -> None:
    assert make_cmdline(
        platform="metal", platform_args=["console=tty0"], default_args=DEFAULTS_1_13
    ) == (
        "talos.platform=metal console=tty0 init_on_alloc=1 slab_nomerge pti=on consoleblank=0 "
        "nvme_core.io_timeout=4294967295 printk.devkmsg=on selinux=1 module.sig_enforce=1 "
        "proc_mem.force_override=never"
    )


def test_golden_talos_1_14_aws() -> None:
    aws = ["console=tty1", "console=ttyS0", "net.ifnames=0", "nvme_core.io_timeout=4294967295"]
    assert make_cmdline(platform="aws", platform_args=aws, default_args=DEFAULTS_1_14) == (
        "talos.platform=aws console=tty1 console=ttyS0 net.ifnames=0 "
        "nvme_core.io_timeout=4294967295 slab_nomerge pti=on consoleblank=0 printk.devkmsg=on "
        "selinux=1 module.sig_enforce=1 proc_mem.force_override=never"
    )


def test_golden_talos_1_7_metal_accumulates_consoles() -> None:
    defaults = [
        "init_on_alloc=1",
        "slab_nomerge",
        "pti=on",
        "consoleblank=0",
        "nvme_core.io_timeout=4294967295",
        "printk.devkmsg=on",
        "ima_template=ima-ng",
        "ima_appraise=fix",
        "ima_hash=sha512",
    ]
    assert make_cmdline(
        platform="metal", platform_args=["console=ttyS0", "console=tty0"], default_args=defaults
    ) == (
        "talos.platform=metal console=ttyS0 console=tty0 init_on_alloc=1 slab_nomerge pti=on "
        "consoleblank=0 nvme_core.io_timeout=4294967295 printk.devkmsg=on "
        "ima_template=ima-ng ima_appraise=fix ima_hash=sha512"
    )


def test_extra_args_overwrite_console_and_platform_and_negate() -> None:
    line = make_cmdline(
        platform="metal",
        platform_args=["console=tty0"],
        default_args=["console=ttyS0,115200", "quiet", "pti=on"],
        extra_args=["console=ttyS0", "talos.platform=nocloud", "-quiet", "factory.poweroff=1"],
    )
    assert line == "talos.platform=nocloud console=ttyS0 pti=on factory.poweroff=1"


def test_overlay_args_replace_platform_args() -> None:
    line = make_cmdline(
        platform="metal",
        platform_args=["console=tty0", "net.ifnames=0"],
        default_args=["pti=on"],
        overlay_args=["console=ttyAMA0,115200", "sysctl.kernel.kexec_load_disabled=1"],
    )
    assert line == (
        "talos.platform=metal console=ttyAMA0,115200 net.ifnames=0 "
        "sysctl.kernel.kexec_load_disabled=1 pti=on"
    )


def test_meta_goes_into_the_environment_before_extra_args() -> None:
    meta = [(0x0A, '{"externalIPs":["1.2.3.4"]}')]
    line = make_cmdline(
        platform="metal",
        platform_args=[],
        default_args=["pti=on"],
        meta=meta,
        meta_as_arg=True,
        extra_args=["console=ttyS0"],
    )
    assert line == (
        "talos.platform=metal pti=on "
        "talos.environment=INSTALLER_META_BASE64=MHhhPXsiZXh0ZXJuYWxJUHMiOlsiMS4yLjMuNCJdfQ== "
        "console=ttyS0"
    )
    without = make_cmdline(platform="metal", platform_args=[], default_args=[], meta=meta)
    assert "talos.environment" not in without


def test_encode_meta_vector() -> None:
    assert encode_meta([(0x0A, '{"externalIPs":["1.2.3.4"]}')]) == (
        "MHhhPXsiZXh0ZXJuYWxJUHMiOlsiMS4yLjMuNCJdfQ=="
    )


def test_encode_meta_joins_with_semicolons_in_order() -> None:
    encoded = encode_meta([(0x0C, "b"), (0x0A, "a")])
    assert base64.b64decode(encoded) == b"0xc=b;0xa=a"


def test_encode_meta_gzips_long_payloads_deterministically() -> None:
    values = [(0x0A, "x" * 300)]
    encoded = encode_meta(values)
    raw = base64.b64decode(encoded)
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == b"0xa=" + b"x" * 300
    assert encode_meta(values) == encoded
    short = base64.b64decode(encode_meta([(0x0A, "x" * 252)]))
    assert short == b"0xa=" + b"x" * 252
