"""The 50-client tail of cache hits (issue 12): the factory and nginx on the same small file,
in turns, plus the CPU each factory request costs its web processes.

    python bench/serve_tail.py [--work /var/tmp/factory-bench-tail] [--rounds 2]

About 2 minutes (plus building the reference release the first time). Prints the figures;
bench/RESULTS.md quotes them by hand under the serving section. Latency at 50 keep-alive
clients is throughput-bound (Little's law: mean latency = clients / requests per second), so
the CPU per request is the figure that says whether a tail is ours or the machine's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import serve as bench_serve  # noqa: E402  (bench/serve.py, beside this script)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of the web processes among `pids` (gunicorn's, by cmdline)."""
    total = 0.0
    for pid in pids:
        try:
            if b"serve" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench-tail"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    source = bench_serve.reference(work)
    small = work / "small.bin"
    small.write_bytes(b"talos.platform=metal console=ttyS0 bench=small\n")
    data, _settings, _store, sid = bench_serve.embedded_small(work, source, small)
    port = bench_serve.free_port()
    env = {
        "IMAGE_FACTORY_DATA_DIR": str(data),
        "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
    }
    path = f"/image/{sid}/{bench_serve.VERSION}/{bench_serve.SMALL_PATH}"
    blob = "/" + hashlib.sha256(small.read_bytes()).hexdigest()
    with (
        bench_serve.serve("embedded", env, port, logs) as (url, pid),
        bench_serve.nginx(data / "store" / "blobs" / "sha256", logs) as nginx_url,
    ):
        watch = bench_serve.RssWatch(pid)
        tree = watch._tree()
        watch.stop()
        bench_serve.latency(url, path, 2)  # each web process checks the blob once
        for _ in range(args.rounds):
            for clients in (1, 50):
                before = cpu_seconds(tree)
                factory = bench_serve.latency(url, path, clients)
                requests = factory["rps"] * bench_serve.LATENCY_SECONDS
                cpu_ms = 1000 * (cpu_seconds(tree) - before) / requests
                nginx = bench_serve.latency(nginx_url, blob, clients)
                print(
                    f"{clients:2} clients: factory p50 {factory['p50']:.1f} ms, p99 "
                    f"{factory['p99']:.1f} ms, {factory['rps']:.0f}/s, {cpu_ms:.2f} ms CPU per "
                    f"request | nginx p50 {nginx['p50']:.1f} ms, p99 {nginx['p99']:.1f} ms, "
                    f"{nginx['rps']:.0f}/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
