"""The reference release boots in QEMU and honours the Talos extension contract."""

from __future__ import annotations

import base64
import gzip
import shutil
from pathlib import Path

import pytest

from tests.boot import assert_in_log, boot_and_capture
from tests.workers.releases.adv import adv_block
from workers.assembly.compress import Codec, compress_file
from workers.assembly.cpio import make_cpio
from workers.assembly.initramfs import copy_from_modules_tar
from workers.assembly.run import run_tool
from workers.assembly.squashfs import make_squashfs
from workers.releases.manifest import INITRAMFS, MODULES_TAR, VMLINUZ
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = [pytest.mark.integration, pytest.mark.boot]

SCHEMATIC_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
EPOCH = 1700000000


def _cmdline(meta: bytes) -> str:
    b64 = base64.b64encode(meta).decode()
    return (
        f"console=ttyS0 panic=-1 factory.poweroff=1 talos.environment=INSTALLER_META_BASE64={b64}"
    )


def _boot_files(store: LocalStore, release: Release, dest: Path) -> tuple[Path, Path]:
    return (
        release.fetch(store, VMLINUZ, dest / VMLINUZ),
        release.fetch(store, INITRAMFS, dest / INITRAMFS),
    )


def test_base_release_boots_and_reads_meta_from_the_kernel_argument(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    kernel, initrd = _boot_files(store, release, tmp_path)

    log = boot_and_capture(kernel=kernel, initrd=initrd, append=_cmdline(b"0xa=hello"))

    assert_in_log(log, "factory: meta 0x0a=hello", "factory: boot ok")
    assert "factory: extension" not in log
    assert "factory: boot failed" not in log


def _module_layer(modules_tar: Path, kver: str, tmp: Path) -> Path:
    """A layer with a program, dummy.ko under extras/, depmod output over the merged tree
    (base modules.builtin*/order + the layer) and a modules-load.d entry for dummy."""
    layer = tmp / "layer"
    (layer / "usr/local/bin").mkdir(parents=True)
    (layer / "usr/local/bin/hi").write_text("#!/bin/sh\necho hi\n")
    (layer / "usr/local/bin/hi").chmod(0o755)
    (layer / "etc/modules-load.d").mkdir(parents=True)
    (layer / "etc/modules-load.d/x.conf").write_text("# test layer\ndummy\n")

    merged = tmp / "merged"
    base = f"usr/lib/modules/{kver}/"
    names = ["modules.builtin", "modules.builtin.modinfo", "modules.order"]
    copy_from_modules_tar(modules_tar, kver, [*names, "kernel/drivers/net/dummy.ko"], merged / base)
    extras = merged / base / "extras"
    extras.mkdir()
    shutil.move(merged / base / "kernel/drivers/net/dummy.ko", extras / "dummy.ko")
    shutil.rmtree(merged / base / "kernel")
    run_tool(["depmod", "-b", merged / "usr", kver])

    shutil.copytree(merged / "usr", layer / "usr", dirs_exist_ok=True)
    return make_squashfs(layer, tmp / "0.sqsh", epoch=EPOCH)


def _schematic_layer(tmp: Path) -> Path:
    layer = tmp / "schematic-layer"
    (layer / "usr/local/share/schematic").mkdir(parents=True)
    (layer / "usr/local/share/schematic" / SCHEMATIC_ID).write_bytes(b"")
    return make_squashfs(layer, tmp / "1.sqsh", epoch=EPOCH)


EXTENSIONS_YAML = f"""layers:
    - image: 0.sqsh
      metadata:
        name: hello-modules
        version: 1.2.3
        author: Tests
        description: a program and the dummy module
        compatibility:
            talos:
                version: '>= 1.0.0'
    - image: 1.sqsh
      metadata:
        name: schematic
        version: {SCHEMATIC_ID}
        author: Image Factory (http://127.0.0.1:8080)
        description: ""
        compatibility:
            talos:
                version: '>= 1.0.0'
        extraInfo: |
            customization:
                extraKernelArgs:
                    - name: evil
"""


def test_appended_layers_are_mounted_and_their_modules_loaded(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    kernel, initrd = _boot_files(store, release, tmp_path)
    modules_tar = release.fetch(store, MODULES_TAR, tmp_path / MODULES_TAR)

    segment = tmp_path / "segment"
    segment.mkdir()
    shutil.move(_module_layer(modules_tar, release.kernel_version, tmp_path), segment / "0.sqsh")
    shutil.move(_schematic_layer(tmp_path), segment / "1.sqsh")
    (segment / "extensions.yaml").write_text(EXTENSIONS_YAML)
    # Extension firmware lands in the initramfs; stage 1 carries it into the new root.
    (segment / "usr/lib/firmware/factory").mkdir(parents=True)
    (segment / "usr/lib/firmware/factory/test.bin").write_bytes(b"\x00firmware")
    cpio = make_cpio(segment, tmp_path / "segment.cpio", epoch=EPOCH)
    appended = compress_file(cpio, tmp_path / "segment.cpio.zst", Codec.ZSTD)
    combined = tmp_path / "initramfs-with-layers"
    combined.write_bytes(initrd.read_bytes() + appended.read_bytes())

    log = boot_and_capture(kernel=kernel, initrd=combined, append=_cmdline(b"0xa=net;0xc=two"))

    assert_in_log(
        log,
        "factory: extension hello-modules 1.2.3",
        f"factory: extension schematic {SCHEMATIC_ID}",
        "factory: module dummy loaded",
        f"factory: schematic {SCHEMATIC_ID}",
        "factory: meta 0x0a=net",
        "factory: meta 0x0c=two",
        "factory: boot ok",
    )
    assert "factory: boot failed" not in log
    # Layer order is the extensions.yaml order.
    assert log.index("extension hello-modules") < log.index("extension schematic")


def _disk_with_meta(path: Path, values: dict[int, bytes]) -> Path:
    """A GPT disk whose partition named META holds a corrupt first ADV copy and a valid
    second one (the reader must fall back to the copy at 256 KiB)."""
    with path.open("wb") as f:
        f.truncate(8 << 20)
    run_tool(["sgdisk", "-n", "1:2048:+1M", "-c", "1:META", "-t", "1:8300", path])
    block = adv_block(values)
    with path.open("r+b") as f:
        f.seek(2048 * 512)
        f.write(block[:100] + b"\xff" * 32 + block[132:])
        f.write(block)
    return path


def test_meta_is_read_from_the_meta_partition_and_a_gzip_kernel_argument(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, release = reference_release
    kernel, initrd = _boot_files(store, release, tmp_path)
    disk = _disk_with_meta(tmp_path / "disk.raw", {0x0A: b"from-disk", 0x0C: b"a\nb"})
    long_value = "y" * 300
    packed = gzip.compress(f"0xb={long_value}".encode(), compresslevel=9, mtime=0)
    append = (
        "console=ttyS0 panic=-1 factory.poweroff=1 "
        f"talos.environment=INSTALLER_META_BASE64={base64.b64encode(packed).decode()}"
    )

    log = boot_and_capture(
        kernel=kernel,
        initrd=initrd,
        append=append,
        drives=[f"file={disk},format=raw,if=virtio"],
    )

    assert_in_log(
        log,
        "factory: meta 0x0a=from-disk",
        "factory: meta 0x0c=a\\nb",
        f"factory: meta 0x0b={long_value}",
        "factory: boot ok",
    )
