"""Time to the first byte of cold kernel and initramfs downloads over HTTP (issue 21).

    python bench/cold_first_byte.py [--talos /var/tmp/factory-bench-talos]
                                    [--work /var/tmp/factory-bench-cold] [--runs 3]

The Talos-sized release (made by bench/talos.py, read from `--talos`, never changed) and its
5 MiB extension are stored in a store of its own under `--work` (so the extension's catalog
record says whether it carries CPU microcode). The factory's app is served over real HTTP
(werkzeug's threaded server on 127.0.0.1) with a build worker in this process, twice: with
`IMAGE_FACTORY_STREAM_COLD` on and off. Each run drops every build and cached layer, then
downloads the asset with urllib: seconds to the first byte of the body and to its end, and
the body's sha256 is checked against the published build. Medians of `--runs`; prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from build import machine  # noqa: E402  (bench/build.py, beside this script)
from celery.contrib.testing.worker import start_worker  # noqa: E402
from results import write_section  # noqa: E402
from talos_release import TALOS  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from factory import create_app  # noqa: E402
from schematics import parse_schematic  # noqa: E402
from workers.backends import choose_backend  # noqa: E402
from workers.catalog import add_extension  # noqa: E402
from workers.dispatch.celery_app import make_celery  # noqa: E402
from workers.dispatch.celery_tasks import register  # noqa: E402
from workers.outputs.finished_builds import read_manifest  # noqa: E402
from workers.outputs.schematics_store import save_schematic  # noqa: E402
from workers.planning.plans import make_plan  # noqa: E402
from workers.planning.profiles import parse_profile  # noqa: E402
from workers.releases.stored import list_versions, load_release, save_release  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.store import LocalStore  # noqa: E402

EPOCH = 1700000000
ASSETS = ("kernel-amd64", "initramfs-amd64.xz")


def stock(talos: Path, store: LocalStore) -> None:
    """The Talos-sized release and the 5 MiB extension in `store` (once)."""
    if TALOS not in list_versions(store):
        source = LocalStore(talos / "data" / "store")
        release = load_release(source, TALOS, "amd64")
        files = talos / "cache" / "files"
        save_release(store, release, {name: files / name for name in release.files})
    record = add_extension(store, talos / "cache" / "extensions" / "bench-5m", "factory", EPOCH)
    assert record.cpu_microcode is False, record


@contextlib.contextmanager
def serving(settings: Settings, store: LocalStore) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, create_app(settings, store=store), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def download(url: str) -> tuple[float, float, str]:
    """(seconds to the first body byte, seconds to the end, sha256 of the body)."""
    digest = hashlib.sha256()
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=1800) as response:
        first = response.read(1)
        first_at = time.monotonic() - started
        digest.update(first)
        while chunk := response.read(1 << 20):
            digest.update(chunk)
    return first_at, time.monotonic() - started, digest.hexdigest()


def cold_download(
    store: LocalStore, settings: Settings, base: str, path: str, marker: str
) -> tuple[float, float]:
    """One download of `path` with no build and no cached layer: (first byte, whole), s."""
    for prefix in ("builds", "layers"):
        shutil.rmtree(store.root / prefix, ignore_errors=True)
    yaml = (
        f"customization:\n  extraKernelArgs: [bench.run={marker}]\n"
        "  systemExtensions:\n    officialExtensions: [factory/bench-5m]\n"
    )
    schematic = parse_schematic(yaml.encode())
    sid = save_schematic(store, schematic)
    first, whole, sha256 = download(f"{base}/image/{sid}/{TALOS}/{path}")
    plan = make_plan(store, schematic, sid, TALOS, parse_profile(path), settings)
    built = read_manifest(store, plan.key)
    if built is None or built.sha256 != sha256:
        raise SystemExit(f"{path} ({marker}): the body is not the published build")
    print(marker, path, f"first {first:.2f} s, whole {whole:.2f} s", flush=True)
    return first, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--talos", type=Path, default=Path("/var/tmp/factory-bench-talos"))
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench-cold"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    on = Settings(data_dir=args.work / "data", source_date_epoch=EPOCH)
    off = dataclasses.replace(on, stream_cold=False)
    store = LocalStore(on.data_dir / "store")
    stock(args.talos, store)
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    app = register(make_celery(on, choose_backend(on)))
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        for run in range(args.runs):
            for mode, settings in (("streamed", on), ("waits", off)):
                # A new app each time: a process remembers the manifests it has read, and
                # the builds are dropped behind its back here.
                with serving(settings, store) as base:
                    for path in ASSETS:
                        figures.setdefault((path, mode), []).append(
                            cold_download(store, on, base, path, f"{run}-{mode}")
                        )
    medians = {
        key: (statistics.median(f for f, _ in runs), statistics.median(w for _, w in runs))
        for key, runs in figures.items()
    }
    rows = [
        f"| `{path}` | {mode} | {first:.2f} | {whole:.2f} |"
        for (path, mode), (first, whole) in medians.items()
    ]
    print("\n".join(rows))
    streamed = max(first for (_, mode), (first, _) in medians.items() if mode == "streamed")
    write_results(args.out, rows, args.runs, streamed)


START_MARK = "<!-- bench/cold_first_byte.py: start -->"
END_MARK = "<!-- bench/cold_first_byte.py: end -->"


def write_results(out: Path, rows: list[str], runs: int, streamed: float) -> None:
    host = machine()
    lines = [
        START_MARK,
        "## Cold kernel and initramfs downloads: the first byte",
        "",
        "Written by `python bench/cold_first_byte.py` (not in CI): the Talos-sized release and "
        "its 5 MiB extension, every build and cached layer dropped before each download, "
        "the app served over HTTP on 127.0.0.1 with a build worker in the same process; "
        f"`IMAGE_FACTORY_STREAM_COLD` on (streamed) and off (waits); medians of {runs}. "
        "Each body's sha256 is checked against the published build.",
        "",
        f"Machine: {host['nproc']} CPUs ({host['cpu']}), {host['ram']} RAM, kernel "
        f"{host['kernel']}; {host['date']}.",
        "",
        "| asset | cold download | first byte, s | whole body, s |",
        "|---|---|---:|---:|",
        *rows,
        "",
        f"Target (issue 21): cold kernel and initramfs downloads send their first byte within "
        f"1 s. Slowest streamed first byte: {streamed:.2f} s: "
        f"{'met' if streamed <= 1 else '**not met**'}.",
        END_MARK,
    ]
    write_section(out, "\n".join(lines) + "\n", START_MARK, END_MARK, first=False)


if __name__ == "__main__":
    main()
