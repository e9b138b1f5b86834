"""Every built kind from the reference release: structure checked by real tools, then booted
in QEMU (TCG) under SeaBIOS and OVMF with every `factory:` line asserted."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.initramfs import read_members, unpack
from tests.workers.assets import META_VALUE, build_assets, stock_store, the_schematic
from workers.assembly.qemu_img import check_disk
from workers.assembly.run import run_tool
from workers.assembly.squashfs import list_squashfs
from workers.releases.manifest import INITRAMFS
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

ASSETS = [
    "kernel-amd64",
    "cmdline-metal-amd64",
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "metal-amd64.raw",
    "metal-amd64.qcow2",
]
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@pytest.fixture(scope="module")
def built(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    store, settings = stock_store(reference_release, root)
    return build_assets(store, settings, ASSETS, root / "out")


def test_cmdline(built: dict[str, Path]) -> None:
    cmdline = built["cmdline-metal-amd64"].read_text()
    assert cmdline == (
        "talos.platform=metal console=ttyS0 "
        "talos.environment=INSTALLER_META_BASE64=MHhhPXsiZXh0ZXJuYWxJUHMiOlsiMS4yLjMuNCJdfQ== "
        "factory.poweroff=1"
    )


def test_initramfs_is_the_base_as_is_plus_one_member_per_layer(
    built: dict[str, Path], reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    base = release.fetch(store, INITRAMFS, tmp_path / "base").read_bytes()
    whole = built["initramfs-amd64.xz"].read_bytes()
    assert whole.startswith(base)  # no microcode here, so the base comes first
    members = read_members(whole)
    assert members[0].offset == 0
    assert [(m.kind, [e.name for e in m.entries]) for m in members[1:]] == [
        ("raw", ["0.sqsh"]),
        ("raw", ["1.sqsh"]),
        ("raw", ["2.sqsh"]),
        ("raw", ["modules.dep.sqsh"]),
        ("zstd", ["extensions.yaml"]),
    ]
    tree = unpack(members[1:])
    _, sid = the_schematic()
    text = tree["extensions.yaml"].data.decode()
    order = [text.index(f"name: {name}") for name in ("hello", "dummy-module", "schematic")]
    assert order == sorted(order)
    assert f"version: {sid}" in text
    assert text.index("image: modules.dep.sqsh") > text.index("name: schematic")
    modules = tmp_path / "m.sqsh"
    modules.write_bytes(tree["modules.dep.sqsh"].data)
    listing = list_squashfs(modules)
    kver = next(p.split("/")[3] for p in listing if p.startswith("usr/lib/modules/"))
    for path in (
        f"usr/lib/modules/{kver}/kernel/drivers/block/zram/zram.ko",
        f"usr/lib/modules/{kver}/kernel/mm/zsmalloc.ko",
        f"usr/lib/modules/{kver}/modules.dep",
        f"usr/lib/modules/{kver}/modules.dep.bin",
        f"usr/lib/modules/{kver}/modules.alias",
        "etc/modules-load.d/schematic.conf",
    ):
        assert path in listing
    root = tmp_path / "modules"
    run_tool(["unsquashfs", "-no-progress", "-d", root, modules])
    deps = (root / f"usr/lib/modules/{kver}/modules.dep").read_text()
    assert "kernel/drivers/block/zram/zram.ko: kernel/mm/zsmalloc.ko" in deps
    assert "extras/dummy.ko:" in deps  # the extension's module is in the merged index
    assert (root / "etc/modules-load.d/schematic.conf").read_text() == "zram\n"


def test_iso_structure(built: dict[str, Path]) -> None:
    iso = built["metal-amd64.iso"]
    report = run_tool(["xorriso", "-indev", iso, "-report_el_torito", "plain"]).decode()
    assert "El Torito boot img :   1  BIOS" in report
    assert "El Torito boot img :   2  UEFI" in report


def test_disk_structure(built: dict[str, Path]) -> None:
    raw = built["metal-amd64.raw"]
    table: dict[str, Any] = json.loads(run_tool(["sfdisk", "--json", raw]))["partitiontable"]
    assert [p["name"] for p in table["partitions"]] == ["EFI", "BIOS", "BOOT", "META"]
    assert "No problems found" in run_tool(["sgdisk", "-v", raw]).decode()
    assert check_disk(built["metal-amd64.qcow2"], "qcow2")["check-errors"] == 0


def _ovmf_args(tmp: Path) -> list[str]:
    variables = tmp / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, variables)
    return [
        "-drive",
        f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={variables}",
    ]


def _disk(path: Path, fmt: str) -> str:
    return f"file={path},format={fmt},if=virtio,snapshot=on"


BOOT_CASES = [
    "direct",
    "iso-seabios",
    "iso-ovmf",
    "iso-as-disk-seabios",
    "iso-as-disk-ovmf",
    "raw-seabios",
    "raw-ovmf",
    "qcow2-ovmf",
]


def _boot(case: str, built: dict[str, Path], tmp: Path) -> str:
    iso, raw, qcow2 = built["metal-amd64.iso"], built["metal-amd64.raw"], built["metal-amd64.qcow2"]
    if case == "direct":
        return boot_and_capture(
            kernel=built["kernel-amd64"],
            initrd=built["initramfs-amd64.xz"],
            append=built["cmdline-metal-amd64"].read_text(),
        )
    if case == "iso-seabios":
        return boot_and_capture(extra_args=["-cdrom", str(iso), "-boot", "d"])
    if case == "iso-ovmf":
        return boot_and_capture(extra_args=["-cdrom", str(iso), *_ovmf_args(tmp)])
    # The hybrid ISO also boots as a USB stick / hard disk.
    if case == "iso-as-disk-seabios":
        return boot_and_capture(drives=[f"file={iso},format=raw,if=ide,snapshot=on"])
    if case == "iso-as-disk-ovmf":
        return boot_and_capture(drives=[_disk(iso, "raw")], extra_args=_ovmf_args(tmp))
    if case == "raw-seabios":
        return boot_and_capture(drives=[_disk(raw, "raw")])
    if case == "raw-ovmf":
        return boot_and_capture(drives=[_disk(raw, "raw")], extra_args=_ovmf_args(tmp))
    return boot_and_capture(drives=[_disk(qcow2, "qcow2")], extra_args=_ovmf_args(tmp))


@pytest.fixture(scope="module")
def boot_logs(built: dict[str, Path]) -> Iterator[dict[str, str]]:
    """Every boot case, two QEMUs at a time (TCG boots take 10-30 s each)."""
    with tempfile.TemporaryDirectory(prefix="boots-") as tmp:

        def run(case: str) -> tuple[str, str]:
            case_dir = Path(tmp) / case
            case_dir.mkdir()
            return case, _boot(case, built, case_dir)

        with ThreadPoolExecutor(max_workers=2) as pool:
            yield dict(pool.map(run, BOOT_CASES))


@pytest.mark.boot
@pytest.mark.parametrize("case", BOOT_CASES)
def test_boots_with_every_extension_module_and_meta(case: str, boot_logs: dict[str, str]) -> None:
    _, sid = the_schematic()
    log = boot_logs[case]
    assert_in_log(
        log,
        "factory: extension hello 1.0.0",
        "factory: extension dummy-module 1.0.0-v1.0.0",
        f"factory: extension schematic {sid}",
        "factory: extension modules.dep ",
        "factory: module zram loaded",
        "factory: module dummy loaded",
        f"factory: schematic {sid}",
        f"factory: meta 0x0a={META_VALUE}",
        "factory: boot ok",
    )
    assert "factory: boot failed" not in log
    # Disks carry META in their META partition, everything else on the command line.
    on_cmdline = "INSTALLER_META_BASE64" in log.split("factory:", 1)[0]
    assert on_cmdline == (not case.startswith(("raw", "qcow2")))
