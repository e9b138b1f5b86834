"""Container benchmark: the image's size and how fast its containers start.

    python bench/container.py [--out bench/RESULTS.md] [--runs 3]

Builds the image from the Dockerfile as tests/test_container.py does (podman, the locally
made debian:12-slim base, layer cache), then measures, hardened as docker-compose.yml runs it:
- the image's size, and the base's, as podman reports them;
- `image-factory --help` in a fresh container (interpreter and imports);
- a web container (`serve`, scaled mode against a Redis and a SeaweedFS on loopback) from
  `podman run` to its first `200` on `/healthz`;
- a worker container from `podman run` to Celery's `ready.` line.
Each start figure is the median of `--runs`. Prints the figures and writes them as a section
of `--out` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import write_section  # noqa: E402  (bench/results.py, beside this script)

from tests.containers import (  # noqa: E402
    BASE_IMAGE,
    DATA,
    IMAGE,
    PODMAN_RUN,
    build_image,
    owned_dir,
    podman_run,
    remove_containers,
)
from tests.services import free_ports, running_redis, running_weed  # noqa: E402

START_MARK = "<!-- bench/container.py: start -->"
END_MARK = "<!-- bench/container.py: end -->"
TIMEOUT = 300.0


def image_mib(name: str) -> float:
    out = subprocess.run(
        ["podman", "image", "inspect", name], capture_output=True, text=True, check=True
    ).stdout
    return float(json.loads(out)[0]["Size"]) / (1 << 20)


def seconds_until(argv: list[str], ready: Callable[[Path], bool], log: Path) -> float:
    """Seconds from starting `argv` until `ready(log)`; the container is removed after."""
    name = argv[argv.index("--name") + 1]
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        while not ready(log):
            if process.poll() is not None or time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"{name} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        return time.monotonic() - started
    finally:
        remove_containers([name])
        process.wait()


def healthz(port: int) -> Callable[[Path], bool]:
    def ready(log: Path) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-container-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        started = time.monotonic()
        build_image(work)
        cached_build = time.monotonic() - started
        for server in ("redis", "weed"):
            (work / server).mkdir()
        redis = stack.enter_context(running_redis(work / "redis"))
        s3 = stack.enter_context(running_weed(work / "weed"))
        env = {
            "IMAGE_FACTORY_BROKER_URL": redis.url,
            "IMAGE_FACTORY_S3_ENDPOINT": s3.endpoint,
            "IMAGE_FACTORY_S3_ACCESS_KEY": s3.access_key,
            "IMAGE_FACTORY_S3_SECRET_KEY": s3.secret_key,
        }
        help_runs, web_runs, worker_runs = [], [], []
        for run in range(args.runs):
            data = owned_dir(work / f"data{run}")
            name = f"bench-container-{run}"
            help_argv = [*PODMAN_RUN, "--name", f"{name}-help", IMAGE, "--help"]
            help_runs.append(seconds_until(help_argv, lambda log: b"Usage" in log.read_bytes(),
                                           work / "help.log"))  # fmt: skip
            port = free_ports(1)[0]
            web = podman_run(f"{name}-web", ["serve", "--host", "127.0.0.1", "--port", str(port)],
                             env, {data: DATA})  # fmt: skip
            web_runs.append(seconds_until(web, healthz(port), work / "web.log"))
            worker = podman_run(f"{name}-worker", ["worker"], env, {data: DATA})
            worker_runs.append(seconds_until(worker, lambda log: b" ready." in log.read_bytes(),
                                             work / "worker.log"))  # fmt: skip
    figures = {
        "image": image_mib(IMAGE),
        "base": image_mib(BASE_IMAGE),
        "help": statistics.median(help_runs),
        "web": statistics.median(web_runs),
        "worker": statistics.median(worker_runs),
    }
    print(json.dumps(figures, indent=2))
    date = datetime.date.today().isoformat()
    section = f"""{START_MARK}
## Container image (bench/container.py, {date})

Built from the `Dockerfile` with podman (`--isolation=chroot`) on the locally made
`debian:12-slim`; containers run as docker-compose.yml runs them (read-only, no capabilities,
limits), on a 2-core machine shared with other work. Start times: median of {args.runs}.

| Figure | Value |
| --- | --- |
| Image size | {figures["image"]:.0f} MiB (base `debian:12-slim`: {figures["base"]:.0f} MiB) |
| Rebuild with unchanged sources (layer cache) | {cached_build:.1f} s |
| `image-factory --help` in a new container | {figures["help"]:.2f} s |
| Web container (`serve`, scaled) to its first `/healthz` 200 | {figures["web"]:.2f} s |
| Worker container to Celery's `ready.` | {figures["worker"]:.2f} s |

The image is two stages: the venv is made in the first (pip, the sources and ensurepip stay
there; every library installs from a binary wheel, so no compiler is ever installed) and
copied into the second, which holds Debian's Python, the build tools of
`scripts/apt-packages-serve.txt` and the apt index `prepare` needs, nothing else.
{END_MARK}
"""
    write_section(args.out, section, START_MARK, END_MARK, first=False)


if __name__ == "__main__":
    main()
