"""Disk writes of a cold metal ISO, per step, for one or more checkouts of this project.

    python bench/iso_writes.py [--work /var/tmp/factory-bench-iso-writes] [--code ROOT ...]

The reference release with the schematic's layer, `hello` and one 40 MiB extension of mixed
data (bench/talos_release.py's generator), every cached layer dropped before each build.
Each build runs in a child process; the figure is that process' `write_bytes`, which takes
in every child it reaped (Linux adds a reaped child's I/O accounting to its parent's). Its
tools run unsandboxed for the count (a tool under bwrap is not accounted to the build: a
50 MiB `dd` in the sandbox shows 0 bytes); they write the same bytes either way. Per step:
the initramfs (layers and members, and within it `write_initramfs`, the file, when one is
written), the ISO (xorriso, GRUB images, efi.img) and, where the ISO is filled in place, the
fill. `--code` names other checkouts to compare (e.g. `git archive <commit> | tar -x -C
/tmp/before`), built in turns from the same store. Not part of CI; a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = "big40"

CHILD = """
import json, os, shutil, sys
from pathlib import Path
code, work = Path(sys.argv[1]), Path(sys.argv[2])
sys.path[:0] = [str(code), str(code / "bench")]
import workers
assert Path(workers.__file__).is_relative_to(code), workers.__file__
from build import Bench
import workers.assembly.run as run
import workers.pipeline.boot_media as boot_media
import workers.pipeline.build_asset as build_asset
from workers.pipeline.build_once import ensure_built

def written():
    lines = Path("/proc/self/io").read_text().splitlines()
    return int(dict(line.split(": ") for line in lines)["write_bytes"])

steps = {}
def counted(module, name):
    function = getattr(module, name, None)
    if function is None:
        return
    def wrapper(*args, **kwargs):
        before = written()
        try:
            return function(*args, **kwargs)
        finally:
            steps[name] = steps.get(name, 0) + written() - before
    setattr(module, name, wrapper)

for name in ("build_initramfs", "initramfs_pieces_for", "write_initramfs"):
    counted(build_asset, name)
for name in ("make_iso", "fill_file"):
    counted(boot_media, name)
bench = Bench(work, 1)
plan = bench.plan(sys.argv[3].encode(), "metal-amd64.iso")  # planned with the sandbox there
run.sandbox_problem = lambda: "tools unsandboxed, so that their writes are counted"
bench.forget(layers=True)
shutil.rmtree(work / "tmp", ignore_errors=True)
os.sync()
before = written()
built = ensure_built(bench.store, plan, work / "tmp")
print(json.dumps({"written": written() - before, "output": built.size, "steps": steps}))
"""


def prepare(work: Path) -> bytes:
    """The store under `work` (reference release, bundled extensions, the big extension);
    the schematic built."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from build import EPOCH, Bench
    from talos_release import MIB, make_extension_source

    from workers.catalog import add_extension

    bench = Bench(work, 1)
    bench.prepare()
    source = make_extension_source(work / "extensions" / EXTENSION, EXTENSION, 40 * MIB)
    add_extension(bench.store, source, "factory", EPOCH)
    return (
        "customization:\n  extraKernelArgs: [console=ttyS0]\n  systemExtensions:\n"
        f"    officialExtensions: [factory/{EXTENSION}, factory/hello]\n"
    ).encode()


def cold_iso(code: Path, work: Path, schematic: bytes) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(code), str(work), schematic.decode()],
        check=True, capture_output=True, cwd=code,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench-iso-writes"))
    parser.add_argument("--code", type=Path, action="append", default=[])
    args = parser.parse_args()
    schematic = prepare(args.work)
    print("| checkout | written / output byte | written, MiB | output, MiB | by step, MiB |")
    print("|---|---:|---:|---:|---|")
    for code in [ROOT, *args.code]:
        r = cold_iso(code.resolve(), args.work, schematic)
        steps = ", ".join(f"{name} {value / 2**20:.1f}" for name, value in r["steps"].items())
        print(
            f"| {os.path.relpath(code)} | {r['written'] / r['output']:.2f} | "
            f"{r['written'] / 2**20:.1f} | {r['output'] / 2**20:.1f} | {steps} |"
        )


if __name__ == "__main__":
    main()
