"""A Talos-sized release and realistic extensions, made deterministically for the benchmarks.

The reference release (v1.0.0, built from Debian packages) is the skeleton; its files are
grown to Talos' sizes, each from seeded pseudo-random data, so every run on every machine
makes the same bytes:

- `vmlinuz`: the reference kernel (a real bzImage, so UKI and ISO tools accept it) followed by
  incompressible padding up to KERNEL_BYTES (a kernel image is compressed data);
- `initramfs.xz`: the reference initramfs (busybox `/init`, its modules) whose `rootfs.sqsh`
  is the reference root plus ROOT_FILLER_BYTES of mixed data, packed like the reference root
  (mksquashfs zstd), and EARLY_FILLER_BYTES of incompressible early files beside it; the
  whole newc cpio is xz-compressed (xz -0: the root inside is compressed already);
- the other files (modules.tar, GRUB and systemd-boot files) are the reference ones.

Extensions (`factory/bench-5m`, `-40m`, `-120m`) hold that many bytes of mixed data; the
largest puts half of it under `usr/lib/firmware`, as GPU and firmware extensions do (firmware
moves into the initramfs' firmware member, not into a layer).

Mixed data: 64 KiB blocks drawn from four kinds (random bytes; a 16-symbol alphabet; a
4-symbol alphabet; zeros), chosen by a seeded generator; zstd -18 shrinks it to about half,
like executables and firmware.

Generated once into a cache directory (not committed); `prepare_talos` then stores the release
and extensions in a store, both idempotent.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from workers.assembly.compress import Codec, compress_file, decompress_file
from workers.assembly.cpio import extract_newc_file, make_cpio
from workers.assembly.run import run_tool
from workers.assembly.squashfs import extract_squashfs, make_squashfs
from workers.catalog import add_extension
from workers.releases.manifest import INITRAMFS, RELEASE_FILES, VMLINUZ, Manifest
from workers.releases.reference import build_reference_release
from workers.releases.stored import Release, file_entry, list_versions, load_release, save_release
from workers.store import Store

MIB = 1024 * 1024
REFERENCE = "v1.0.0"
TALOS = "v1.9.0"
KERNEL_BYTES = 18 * MIB
ROOT_FILLER_BYTES = 116 * MIB  # about 70 MiB once in the SquashFS root
EARLY_FILLER_BYTES = 8 * MIB
EXTENSIONS = {"bench-5m": 5 * MIB, "bench-40m": 40 * MIB, "bench-120m": 120 * MIB}
FILE_BYTES = 4 * MIB  # filler files are at most this large
BLOCK = 64 * 1024
_HEX = bytes(b"0123456789abcdef"[i % 16] for i in range(256))
_DNA = bytes(b"acgt"[i % 4] for i in range(256))

EXTENSION_MANIFEST = """version: v1alpha1
metadata:
  name: {name}
  version: 1.0.0
  author: Image Factory bench
  description: {size} MiB of mixed data, for the Talos-sized benchmark.
  compatibility:
    talos:
      version: ">= v1.0.0"
"""


def mixed_bytes(rng: random.Random, size: int) -> bytes:
    """`size` bytes of mixed compressibility (see the module docstring)."""
    blocks = []
    for start in range(0, size, BLOCK):
        n = min(BLOCK, size - start)
        kind = rng.random()
        if kind < 0.35:
            blocks.append(rng.randbytes(n))
        elif kind < 0.7:
            blocks.append(rng.randbytes(n).translate(_HEX))
        elif kind < 0.9:
            blocks.append(rng.randbytes(n).translate(_DNA))
        else:
            blocks.append(bytes(n))
    return b"".join(blocks)


def write_filler(directory: Path, total: int, seed: str) -> None:
    """`total` bytes of mixed data in files of at most FILE_BYTES under `directory`."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    number = 0
    while total > 0:
        size = min(total, FILE_BYTES)
        (directory / f"data-{number:04d}.bin").write_bytes(mixed_bytes(rng, size))
        total -= size
        number += 1


def make_extension_source(root: Path, name: str, size: int) -> Path:
    """An extension source directory `root` with `size` bytes of mixed data."""
    if (root / "manifest.yaml").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    lib = root / "rootfs" / "usr" / "local" / "lib" / name
    if size >= 100 * MIB:
        write_filler(lib, size // 2, f"{name}/lib")
        write_filler(root / "rootfs" / "usr" / "lib" / "firmware" / name, size // 2, f"{name}/fw")
    else:
        write_filler(lib, size, f"{name}/lib")
    (root / "manifest.yaml").write_text(EXTENSION_MANIFEST.format(name=name, size=size // MIB))
    return root


def make_talos_files(store: Store, reference: Release, cache: Path, epoch: int) -> dict[str, Path]:
    """The Talos-sized release files in `cache/files` (made once)."""
    files = cache / "files"
    done = cache / "files.done"
    if done.exists():
        return {name: files / name for name in RELEASE_FILES}
    shutil.rmtree(cache / "work", ignore_errors=True)
    shutil.rmtree(files, ignore_errors=True)
    work = cache / "work"
    work.mkdir(parents=True)
    files.mkdir()
    for name in RELEASE_FILES:
        reference.fetch(store, name, files / name)
    # Kernel: the real image, then incompressible padding (appended data is ignored by boot
    # loaders and kept by the UKI and ISO tools).
    with (files / VMLINUZ).open("ab") as kernel:
        kernel.write(random.Random("kernel").randbytes(KERNEL_BYTES - kernel.tell()))
    # Base initramfs: the reference tree, root grown, early filler beside it.
    cpio = decompress_file(files / INITRAMFS, work / "base.cpio")
    tree = work / "initramfs"
    tree.mkdir()
    with cpio.open("rb") as reader:
        run_tool(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], cwd=tree, stdin=reader)
    root_sqsh = extract_newc_file(cpio, "rootfs.sqsh", work / "rootfs.sqsh")
    root = extract_squashfs(root_sqsh, work / "root")
    write_filler(root / "usr" / "share" / "bench", ROOT_FILLER_BYTES, "root")
    make_squashfs(root, tree / "rootfs.sqsh", epoch=epoch)
    # Early files (microcode, firmware an early boot needs): incompressible.
    (tree / "bench-early.bin").write_bytes(random.Random("early").randbytes(EARLY_FILLER_BYTES))
    big_cpio = make_cpio(tree, work / "talos.cpio", epoch=epoch)
    compress_file(big_cpio, files / INITRAMFS, Codec.XZ)
    shutil.rmtree(work)
    done.touch()
    return {name: files / name for name in RELEASE_FILES}


def prepare_reference(store: Store, cache: Path, deb_cache: Path, epoch: int) -> Release:
    """Store the reference release REFERENCE (built from Debian packages) in `store`."""
    cache.mkdir(parents=True, exist_ok=True)
    if REFERENCE not in list_versions(store):
        build_reference_release(
            store,
            version=REFERENCE,
            arch="amd64",
            source_date_epoch=epoch,
            cache_dir=deb_cache,
            work_dir=cache / "tmp",
        )
    return load_release(store, REFERENCE, "amd64")


def prepare_talos(store: Store, cache: Path, deb_cache: Path, epoch: int) -> Release:
    """Store the Talos-sized release TALOS (and the reference it grows from) and the bench
    extensions in `store`; generated files are kept in `cache`."""
    reference = prepare_reference(store, cache, deb_cache, epoch)
    if TALOS not in list_versions(store):
        files = make_talos_files(store, reference, cache, epoch)
        manifest = Manifest(
            version=TALOS,
            arch="amd64",
            source_date_epoch=epoch,
            kernel_version=reference.kernel_version,
            kernel_args=reference.kernel_args,
            platform_args=reference.platform_args,
            files={name: file_entry(path) for name, path in sorted(files.items())},
            origin={"builder": "bench/talos_release.py", "grown_from": reference.digest},
        )
        save_release(store, manifest, files)
    return load_release(store, TALOS, "amd64")


def add_bench_extensions(store: Store, cache: Path, epoch: int) -> list[str]:
    """Store the bench extensions (5, 40, 120 MiB); their schematic names."""
    names = []
    for name, size in EXTENSIONS.items():
        source = make_extension_source(cache / "extensions" / name, name, size)
        add_extension(store, source, "factory", epoch)
        names.append(f"factory/{name}")
    return names
