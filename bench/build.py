"""Build benchmark: cold and warm wall time per asset kind, a hand-written shell baseline for
the ISO, a one-extension rebuild, and peak memory while building an 8 GiB disk image.

    python bench/build.py [--out bench/RESULTS.md] [--work /var/tmp/factory-bench]

- cold: the store holds the release and the catalog but no cached layer and no build;
- warm: the layers of an earlier build are cached, only the final assembly runs again;
- baseline: bench/baseline_iso.sh, the same ISO steps as one plain shell pipeline;
- one extension changed: the ISO of a schematic that differs by one extension, built with the
  first schematic's layers cached, against that schematic's cold build;
- memory: a child process builds an sd-boot disk of 404 MiB and one of 8 GiB (and zstd-
  compresses it); its peak RSS (VmHWM) and that of its largest tool must not grow with size.

Every figure is the median of `--runs` runs (default 3). Prints a table and writes Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import write_section  # noqa: E402  (bench/results.py, beside this script)

from extensions.manifest import Manifest  # noqa: E402
from schematics import parse_schematic, schematic_id  # noqa: E402
from workers.assembly.extensions_yaml import LayerEntry, render_extensions_yaml  # noqa: E402
from workers.assembly.grub import unpack_grub_dir  # noqa: E402
from workers.catalog import (  # noqa: E402
    add_extension,
    extract_extension,
    install_bundled_extensions,
)
from workers.pipeline.build_once import ensure_built  # noqa: E402
from workers.planning.cmdline import asset_cmdline  # noqa: E402
from workers.planning.plans import SOURCE_BLOB, Plan, make_plan  # noqa: E402
from workers.planning.profiles import parse_profile  # noqa: E402
from workers.releases.manifest import GRUB_BIOS_TAR, GRUB_EFI_TAR, INITRAMFS, VMLINUZ  # noqa: E402
from workers.releases.reference import build_reference_release  # noqa: E402
from workers.releases.stored import Release, blob_key, list_versions, load_release  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.store import LocalStore  # noqa: E402

VERSION = "v1.0.0"
EPOCH = 1700000000
DEB_CACHE = Path("/var/cache/image-factory-test/debs")
GIB = 1024**3

# No kernel modules: the shell baseline has no depmod step to mirror.
SCHEMATIC_A = b"""
customization:
  extraKernelArgs: [console=ttyS0, factory.poweroff=1]
  systemExtensions:
    officialExtensions: [factory/hello, factory/firmware-demo]
"""
# The same with a realistically sized extension (PAYLOAD_MIB of files), where the tools'
# work outweighs the fixed costs of the store (fetch, verify, cache, publish).
PAYLOAD_MIB = 48
SCHEMATIC_PAYLOAD = SCHEMATIC_A.replace(b"factory/hello", b"factory/bench-payload")
PAYLOAD_MANIFEST = """version: v1alpha1
metadata:
  name: bench-payload
  version: 1.0.0
  author: Image Factory bench
  description: Files of half-compressible data, for the build benchmark.
  compatibility:
    talos:
      version: ">= v1.0.0"
"""

# For the one-extension rebuild: a schematic with a kernel module (so a module layer, whose
# depmod run is the costly step), and the same with `hello` swapped for `firmware-demo`.
REBUILD_A = b"""
customization:
  extraKernelArgs: [console=ttyS0, factory.poweroff=1]
  systemExtensions:
    officialExtensions: [factory/hello, factory/dummy-module]
  kernelModules: [zram]
"""
REBUILD_B = REBUILD_A.replace(b"factory/hello", b"factory/firmware-demo")

KINDS = [
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "metal-amd64-secureboot.iso",
    "metal-amd64-uki.efi",
    "metal-amd64-secureboot-uki.efi",
    "metal-amd64.raw",
    "metal-amd64.qcow2",
    "azure-amd64.vhd",
    "vmware-amd64.ova",
    "gcp-amd64.raw.tar.gz",
    "metal-amd64.raw.zst",
    "installer-amd64.tar",
    "installer-amd64-secureboot.tar",
    "extensions-amd64.sqsh",
]


def seconds(action: Callable[[], object]) -> float:
    # Untimed: flush what earlier runs left dirty (disk images are large), so no run pays for
    # another's writeback.
    os.sync()
    started = time.monotonic()
    action()
    return time.monotonic() - started


def median_seconds(action: Callable[[], object], runs: int) -> float:
    return statistics.median(seconds(action) for _ in range(runs))


class Bench:
    def __init__(self, work: Path, runs: int) -> None:
        self.work = work
        self.runs = runs
        self.settings = Settings(data_dir=work / "data", source_date_epoch=EPOCH)
        self.store = LocalStore(self.settings.data_dir / "store")
        self.root = self.settings.data_dir / "store"

    def prepare(self) -> Release:
        if not list_versions(self.store):
            build_reference_release(
                self.store,
                version=VERSION,
                arch="amd64",
                source_date_epoch=EPOCH,
                cache_dir=DEB_CACHE,
                work_dir=self.work / "tmp",
            )
        release = load_release(self.store, VERSION, "amd64")
        install_bundled_extensions(self.settings, self.store, release, lambda _: None)
        add_extension(self.store, payload_extension(self.work / "payload"), "factory", EPOCH)
        return release

    def forget(self, *, layers: bool) -> None:
        """Drop finished builds (and cached layers, for a cold build) from the store."""
        for prefix in ["builds", "layers"] if layers else ["builds"]:
            shutil.rmtree(self.root / prefix, ignore_errors=True)

    def plan(self, schematic_yaml: bytes, path: str) -> Plan:
        schematic = parse_schematic(schematic_yaml)
        return make_plan(
            self.store,
            schematic,
            schematic_id(schematic),
            VERSION,
            parse_profile(path),
            self.settings,
        )

    def build(self, schematic_yaml: bytes, path: str) -> Path:
        plan = self.plan(schematic_yaml, path)
        built = ensure_built(self.store, plan, self.work / "tmp", signer=plan.signer(self.settings))
        return self.root / built.blob

    def cold(self, schematic_yaml: bytes, path: str) -> float:
        def once() -> None:
            self.forget(layers=True)
            self.build(schematic_yaml, path)

        return median_seconds(once, self.runs)

    def warm(self, schematic_yaml: bytes, path: str) -> float:
        self.build(schematic_yaml, path)

        def once() -> None:
            self.forget(layers=False)
            self.build(schematic_yaml, path)

        return median_seconds(once, self.runs)

    def one_extension_changed(self) -> float:
        """Seconds to build REBUILD_B's ISO with REBUILD_A's layers cached."""

        def once() -> float:
            self.forget(layers=True)
            self.build(REBUILD_A, "metal-amd64.iso")
            self.forget(layers=False)
            return seconds(lambda: self.build(REBUILD_B, "metal-amd64.iso"))

        return statistics.median(once() for _ in range(self.runs))

    def compare_iso(self, release: Release, schematic_yaml: bytes) -> tuple[float, float]:
        """Median seconds of the shell baseline and of the factory's cold metal-amd64.iso,
        their runs taken in turns so that both see the same machine."""
        argv = self.baseline_iso_argv(release, schematic_yaml)

        def factory() -> None:
            self.forget(layers=True)
            self.build(schematic_yaml, "metal-amd64.iso")

        pairs = [
            (seconds(lambda: subprocess.run(argv, check=True)), seconds(factory))
            for _ in range(self.runs)
        ]
        return statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)

    def baseline_iso_argv(self, release: Release, schematic_yaml: bytes) -> list[str]:
        """bench/baseline_iso.sh on the same inputs as the factory's metal-amd64.iso."""
        inputs = self.work / "baseline-inputs"
        shutil.rmtree(inputs, ignore_errors=True)
        inputs.mkdir(parents=True)
        plan = self.plan(schematic_yaml, "metal-amd64.iso")
        tars, entries = [], []
        for number, ext in enumerate(plan.extensions):
            tar = inputs / f"ext-{number}.tar"
            key = (
                blob_key(ext.digest)
                if ext.source == SOURCE_BLOB
                else f"extensions/{ext.digest}.tar"
            )
            self.store.download(key, tar)
            manifest: Manifest = extract_extension(tar, inputs / f"check-{number}")
            tars.append(tar)
            entries.append(LayerEntry(f"{number}.sqsh", manifest))
        (inputs / "extensions.yaml").write_bytes(render_extensions_yaml(entries))
        (inputs / "cmdline").write_text(asset_cmdline(plan, release))
        base = release.fetch(self.store, INITRAMFS, inputs / "base.initramfs")
        kernel = release.fetch(self.store, VMLINUZ, inputs / "vmlinuz")
        grub_bios = unpack_grub_dir(
            release.fetch(self.store, GRUB_BIOS_TAR, inputs / "b.tar"), inputs / "grub-bios"
        )
        grub_efi = unpack_grub_dir(
            release.fetch(self.store, GRUB_EFI_TAR, inputs / "e.tar"), inputs / "grub-efi"
        )
        return [
            "bash",
            str(ROOT / "bench" / "baseline_iso.sh"),
            str(self.work / "baseline"),
            str(base),
            str(kernel),
            str(grub_bios),
            str(grub_efi),
            str(inputs / "cmdline"),
            str(inputs / "extensions.yaml"),
            str(EPOCH),
            *map(str, tars),
        ]


def payload_extension(root: Path) -> Path:
    """An extension source with PAYLOAD_MIB of deterministic, half-compressible files."""
    if (root / "manifest.yaml").exists():
        return root
    files = root / "rootfs" / "usr" / "local" / "lib" / "bench"
    files.mkdir(parents=True)
    block = b""
    for number in range(PAYLOAD_MIB * 4):  # 256 KiB each
        chunks = []
        for part in range(64):
            block = hashlib.sha256(block + number.to_bytes(4, "big") + bytes([part])).digest()
            chunks.append(block * 64 + b"payload text " * 158)  # 2 KiB noise + 2 KiB text
        (files / f"data-{number:04d}.bin").write_bytes(b"".join(chunks)[: 256 * 1024])
    (root / "manifest.yaml").write_text(PAYLOAD_MANIFEST)
    return root


MEMORY_CHILD = """
import json, sys
from pathlib import Path
from workers.assembly.bootdisk import make_boot_disk
from workers.assembly.compress import Codec, compress_file
from workers.assembly.sdboot import write_sdboot_tree
work = Path(sys.argv[1]); size = int(sys.argv[2])
uki = work / "uki.efi"; uki.write_bytes(b"u" * (40 << 20))
tree = work / "sdboot"; tree.mkdir()
write_sdboot_tree(tree, sd_boot=Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
                  uki=uki, uki_name="factory.efi")
(work / "disk").mkdir()
raw = make_boot_disk(work / "disk.raw", workdir=work / "disk", bootloader="sd-boot",
                     epoch=1700000000, meta={}, sdboot_tree=tree, disk_size=size)
compress_file(raw, work / "disk.raw.zst", Codec.ZSTD, level=3)
status = Path("/proc/self/status").read_text().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"python_kib": hwm}))
"""


# Runs MEMORY_CHILD as its own child, so RUSAGE_CHILDREN covers exactly that build's process
# tree: the largest resident set among the building process and the tools it ran.
MEMORY_WRAPPER = """
import json, resource, subprocess, sys
out = subprocess.run([sys.executable, "-c", *sys.argv[1:]], check=True, capture_output=True)
result = json.loads(out.stdout)
result["tree_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(result))
"""


def peak_memory(size: int, work: Path) -> dict[str, int]:
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_WRAPPER, MEMORY_CHILD, tmp, str(size)],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ).stdout
    result: dict[str, int] = json.loads(out)
    return result


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated asset paths")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.work, args.runs)
    release = bench.prepare()

    # The target comparisons first, on a quiet machine: the per-kind runs below write
    # gigabytes of disk images, which slow whatever runs next.
    comparisons = []
    for label, schematic in (
        ("bundled extensions", SCHEMATIC_A),
        ("48 MiB extension", SCHEMATIC_PAYLOAD),
    ):
        baseline, iso_cold = bench.compare_iso(release, schematic)
        comparisons.append((label, baseline, iso_cold))
        print(
            f"{label}: baseline ISO {baseline:.2f} s, cold ISO {iso_cold:.2f} s "
            f"({iso_cold / baseline:.2f})"
        )

    rebuild = bench.one_extension_changed()
    b_cold = bench.cold(REBUILD_B, "metal-amd64.iso")
    print(f"one extension changed: {rebuild:.2f} s vs cold {b_cold:.2f} s ({rebuild / b_cold:.2f})")

    rows = []
    for path in args.kinds.split(","):
        cold = bench.cold(SCHEMATIC_A, path)
        warm = bench.warm(SCHEMATIC_A, path)
        rows.append((path, cold, warm))
        print(f"{path:34} cold {cold:7.2f} s  warm {warm:7.2f} s  warm/cold {warm / cold:.2f}")

    small = peak_memory(404 * 1024 * 1024, args.work)
    large = peak_memory(8 * GIB, args.work)
    print(f"peak RSS 404 MiB disk {small}, 8 GiB disk {large}")

    write_results(args.out, machine(), rows, comparisons, rebuild, b_cold, small, large, args.runs)


START_MARK = "<!-- bench/build.py: start -->"
END_MARK = "<!-- bench/build.py: end -->"
NOTES = """## Notes

- The shell baseline starts from unpacked inputs (GRUB directories, kernel, base initramfs and
  extension tars as files) and neither verifies, caches nor hashes anything. The factory, on
  top of the same tool runs, verifies the digest of every input it fetches from the store
  (hashing the 48 MiB extension tar is the largest remaining share), unpacks the GRUB
  modules it embeds, extracts each extension through the validating reader (headers are
  checked first; file data is then copied once, straight from the tar), stores the
  extension layers and firmware members in the layer cache, and hashes (sha256 + sha512)
  and stores the result.
- Every timed run starts after `sync`, so no run pays for the writeback of the disk images
  built before it; the ISO comparisons run first, baseline and factory in turns.
- Raw disk images: most of their time is hashing and storing the 404 MiB result (sparse on
  disk, but every byte is hashed); `.raw.zst` and `.tar.gz` add compression of those bytes.
- warm ≈ cold for these small schematics because the final assembly dominates; the layer cache
  pays off when layers are big, as the one-extension rebuild shows (a schematic with a kernel
  module: the module layer and its depmod run come from the cache).
- Memory: the building process streams (1 MiB chunks, sparse copies, tools reading files),
  so its peak RSS does not depend on the disk size.
"""


def write_results(
    out: Path,
    host: dict[str, str],
    rows: list[tuple[str, float, float]],
    comparisons: list[tuple[str, float, float]],
    rebuild: float,
    rebuild_cold: float,
    small: dict[str, int],
    large: dict[str, int],
    runs: int,
) -> None:
    lines = [
        "# Build benchmark",
        "",
        f"Written by `python bench/build.py` (median of {runs} runs per figure, each started "
        "after `sync`; QEMU is not involved).",
        "",
        f"Machine: {host['nproc']} CPUs ({host['cpu']}), {host['ram']} RAM, "
        f"kernel {host['kernel']}; {host['date']}. The machine is shared with other jobs, so "
        "figures move by ±30% between runs.",
        "",
        "Schematic: extensions `factory/hello` + `factory/firmware-demo` (+ the schematic "
        "extension), extra kernel args; release v1.0.0 (reference OS).",
        "",
        "## Wall time per asset kind",
        "",
        "| asset | cold (s) | warm (s) | warm / cold |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| `{p}` | {c:.2f} | {w:.2f} | {w / c:.2f} |" for p, c, w in rows]
    lines += [
        "",
        "cold: no cached layer; warm: extension and module layers and firmware members "
        "cached, the final assembly (and signing) runs again.",
        "",
        "## Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---:|---:|---|",
    ]
    rebuild_ratio = rebuild / rebuild_cold
    python_mib = (small["python_kib"] / 1024, large["python_kib"] / 1024)
    tree_mib = (small["tree_kib"] / 1024, large["tree_kib"] / 1024)
    lines += [
        f"| cold ISO ({label}, {cold:.2f} s) / shell baseline (`bench/baseline_iso.sh`, "
        f"{baseline:.2f} s) | {cold / baseline:.2f} | ≤ 1.3 | {_met(cold / baseline <= 1.3)} |"
        for label, baseline, cold in comparisons
    ]
    lines += [
        f"| ISO with one extension changed ({rebuild:.2f} s) / its cold build "
        f"({rebuild_cold:.2f} s) | {rebuild_ratio:.2f} | ≤ 0.5 | {_met(rebuild_ratio <= 0.5)} |",
        f"| peak RSS (VmHWM) of the building process, 404 MiB → 8 GiB disk | "
        f"{python_mib[0]:.0f} → {python_mib[1]:.0f} MiB | independent of size | "
        f"{_met(python_mib[1] < python_mib[0] * 1.2)} |",
        f"| largest resident set in that build's process tree, tools included (ru_maxrss), "
        f"404 MiB → 8 GiB disk | {tree_mib[0]:.0f} → {tree_mib[1]:.0f} MiB | "
        f"independent of size | {_met(tree_mib[1] < tree_mib[0] * 1.2)} |",
        "",
    ]
    section = START_MARK + "\n" + "\n".join(lines) + "\n" + NOTES + END_MARK + "\n"
    write_section(out, section, START_MARK, END_MARK, first=True)
    print(f"wrote {out}")


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


if __name__ == "__main__":
    main()
