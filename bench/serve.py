"""Serving benchmark: cache hits, streamed throughput, S3 redirects and web memory.

    python bench/serve.py [--out bench/RESULTS.md] [--work /var/tmp/factory-bench-serve]

Everything runs on loopback, started here and stopped at the end:
- the embedded default (`image-factory serve`, local store, its own worker);
- the scaled web service (`image-factory serve` with Redis and a SeaweedFS S3 store);
- nginx (Debian `nginx-light`) serving the very blob file the factory streams, and
  SeaweedFS serving the very object the factory redirects to.

Figures:
- cache-hit latency (p50/p99) of a small asset at 1 and 50 concurrent keep-alive clients,
  against nginx serving the same bytes;
- streamed throughput of a 256 MiB asset (curl): the factory from its local store three
  ways — the first download in a web process (the whole blob hashed by the process's first
  check, then sent with `sendfile` under the file stamp that hash verified; one run), hashed
  on the wire (the file's ctime was moved, so no verified stamp matches; median of 3) and
  repeat downloads (`sendfile` under a verified stamp; median of 3; how many went which way
  is counted from `/metrics`) — and
  from S3 (hashed on the wire), against nginx and S3 directly (median of 3);
- redirect latency (p50/p99) of the scaled mode's `302` to a presigned URL, 1 and 50 clients;
- `/healthz` latency (p50/p99 of sequential requests) of the scaled web service while 100
  idle, 100 slowly-sending and 100 event-stream connections are open (it runs no build
  worker, so the followed build stays queued and its streams open);
- the largest resident set of a web process while all of the above ran.

Prints the figures and writes them as a section of `--out` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import write_section  # noqa: E402  (bench/results.py, beside this script)

from schematics import parse_schematic  # noqa: E402
from tests.factory.slow_clients import IDLE, SLOW, STREAMS, open_slow_clients  # noqa: E402
from tests.services import (  # noqa: E402
    S3Server,
    ServerProcess,
    running_redis,
    running_weed,
)
from workers.catalog import install_bundled_extensions  # noqa: E402
from workers.keys.deployment_keys import record_keys  # noqa: E402
from workers.keys.secureboot_key import load_or_create_secureboot_key  # noqa: E402
from workers.keys.signing import load_or_create_signing_key  # noqa: E402
from workers.outputs.schematics_store import save_schematic  # noqa: E402
from workers.pipeline.build_once import publish_build  # noqa: E402
from workers.pipeline.progress import StageClock  # noqa: E402
from workers.planning.plans import make_plan  # noqa: E402
from workers.planning.profiles import parse_profile  # noqa: E402
from workers.releases.installer_base import copy_installer_base  # noqa: E402
from workers.releases.reference import build_reference_release  # noqa: E402
from workers.releases.stored import Release, list_versions, load_release, save_release  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.store import LocalStore, Store  # noqa: E402
from workers.store.s3 import S3Store  # noqa: E402

VERSION = "v1.0.0"
EPOCH = 1700000000
DEB_CACHE = Path("/var/cache/image-factory-test/debs")
BIG = 256 * 1024 * 1024
SMALL_PATH = "cmdline-metal-amd64"
BIG_SCHEMATIC = b"customization:\n  extraKernelArgs: [bench=big]\n"
SMALL_SCHEMATIC = b"customization:\n  extraKernelArgs: [bench=small]\n"
LATENCY_SECONDS = 6.0
HEALTHZ_SAMPLES = 200
CLIENT_PROCESSES = 5
START_MARK = "<!-- bench/serve.py: start -->"
END_MARK = "<!-- bench/serve.py: end -->"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def wait_for(url: str, timeout: float = 60) -> None:
    """Until anything answers HTTP at `url` (an error status counts as an answer)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- data -----------------------------------------------------------------------------------


def reference(work: Path) -> tuple[LocalStore, Release]:
    store = LocalStore(work / "reference")
    if not list_versions(store):
        build_reference_release(
            store, version=VERSION, arch="amd64", source_date_epoch=EPOCH,
            cache_dir=DEB_CACHE, work_dir=work / "reference-work",
        )  # fmt: skip
    return store, load_release(store, VERSION, "amd64")


def stock(store: Store, settings: Settings, source: tuple[LocalStore, Release], tmp: Path) -> None:
    src, release = source
    tmp.mkdir(parents=True, exist_ok=True)
    files = {name: release.fetch(src, name, tmp / name) for name in release.files}
    copy_installer_base(src, release, store, tmp)
    save_release(store, release, files)
    install_bundled_extensions(settings, store, release, lambda message: None)


def publish(store: Store, settings: Settings, body: bytes, path: str, data: Path) -> str:
    """A finished build of `path` for schematic `body` whose bytes are the file `data`;
    the schematic ID."""
    schematic = parse_schematic(body)
    sid = save_schematic(store, schematic)
    plan = make_plan(store, schematic, sid, VERSION, parse_profile(path), settings)
    key = load_or_create_signing_key(settings)
    publish_build(store, plan, data, time.monotonic(), StageClock(lambda s, p: None), key)
    return sid


def embedded_small(
    work: Path, source: tuple[LocalStore, Release], small: Path
) -> tuple[Path, Settings, LocalStore, str]:
    """A fresh embedded data directory under `work` with the small asset published in it:
    (data directory, settings, store, schematic ID)."""
    data = work / "embedded"
    shutil.rmtree(data, ignore_errors=True)
    settings = Settings(data_dir=data)
    store = LocalStore(data / "store")
    stock(store, settings, source, work / "tmp")
    sid = publish(store, settings, SMALL_SCHEMATIC, SMALL_PATH, small)
    return data, settings, store, sid


def big_file(path: Path) -> Path:
    if not path.exists() or path.stat().st_size != BIG:
        with path.open("wb") as out:
            for block in range(BIG // (1 << 20)):
                out.write(hashlib.sha512(str(block).encode()).digest() * (1 << 14))
    return path


# --- processes ------------------------------------------------------------------------------


def image_factory() -> str:
    return str(Path(sys.executable).parent / "image-factory")


@contextmanager
def serve(name: str, env: dict[str, str], port: int, log_dir: Path) -> Iterator[tuple[str, int]]:
    """`image-factory serve` with `env` on `port`; (base URL, pid)."""
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), image_factory(), "serve",
            "--port", str(port), "--workers", "2"]  # fmt: skip
    server = ServerProcess(name, argv, log_dir / f"{name}.log", log_dir)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", server.proc.pid
    finally:
        server.stop()


def nginx_user() -> str:
    """Store files are readable by their owner only (issue 12): nginx's workers must run as
    this user to serve the very blob files the factory streams."""
    if os.geteuid() != 0:
        return ""  # workers run as the user who started nginx anyway
    return "user root;\n"


@contextmanager
def nginx(root: Path, log_dir: Path) -> Iterator[str]:
    port = free_port()
    conf = log_dir / "nginx.conf"
    conf.write_text(
        f"""daemon off;
{nginx_user()}worker_processes 2;
pid {log_dir}/nginx.pid;
error_log {log_dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {log_dir}/nginx-body;
    proxy_temp_path {log_dir}/nginx-proxy;
    fastcgi_temp_path {log_dir}/nginx-fastcgi;
    uwsgi_temp_path {log_dir}/nginx-uwsgi;
    scgi_temp_path {log_dir}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        default_type application/octet-stream;
    }}
}}
"""
    )
    server = ServerProcess(
        "nginx", ["/usr/sbin/nginx", "-c", str(conf)], log_dir / "nginx.log", log_dir
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class RssWatch:
    """Samples the resident set of a process tree's members in the background."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
        children: dict[int, list[int]] = {}
        for line in out.stdout.splitlines():
            pid, ppid = (int(x) for x in line.split())
            children.setdefault(ppid, []).append(pid)
        found, todo = [], [self.root_pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"serve" not in cmdline:
                    continue  # the embedded worker and its pool are not web processes
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        kib = int(line.split()[1])
                        self.peak[pid] = max(self.peak.get(pid, 0), kib)

    def stop(self) -> int:
        """The largest resident set (KiB) seen of any one web process."""
        self._stop.set()
        self._thread.join()
        return max(self.peak.values(), default=0)


# --- clients --------------------------------------------------------------------------------


def _client_process(
    host: str, port: int, path: str, headers: dict[str, str], threads: int, seconds: float,
    expect: int, out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:  # fmt: skip
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != expect:
                raise RuntimeError(f"{path}: {response.status}, expected {expect}")
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(latencies)


def latency(url: str, path: str, clients: int, headers: dict[str, str] | None = None,
            expect: int = 200) -> dict[str, float]:  # fmt: skip
    """p50/p99 (ms) and requests per second of `clients` keep-alive clients for a while."""
    host, port = url.removeprefix("http://").split(":")
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    processes = min(CLIENT_PROCESSES, clients)
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    runners = [
        context.Process(
            target=_client_process,
            args=(host, int(port), path, headers or {}, share, LATENCY_SECONDS, expect, out),
        )
        for share in shares
    ]
    for runner in runners:
        runner.start()
    found: list[float] = []
    for _ in runners:
        found += out.get(timeout=LATENCY_SECONDS + 60)
    for runner in runners:
        runner.join()
    found.sort()
    return {
        "p50": 1000 * found[len(found) // 2],
        "p99": 1000 * found[min(len(found) - 1, int(len(found) * 0.99))],
        "rps": len(found) / LATENCY_SECONDS,
    }


def throughput(url: str, runs: int = 3, headers: tuple[str, ...] = ()) -> float:
    """Median MiB/s of `curl` downloading `url` to /dev/null."""
    speeds = []
    for _ in range(runs):
        argv = [
            "curl",
            "-sS",
            "--fail",
            "-o",
            "/dev/null",
            "-w",
            "%{speed_download} %{size_download}",
        ]
        for header in headers:
            argv += ["-H", header]
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
        speed, size = out.split()
        if int(float(size)) != BIG:
            raise RuntimeError(f"{url}: {size} bytes")
        speeds.append(float(speed) / (1 << 20))
    return statistics.median(speeds)


def whole_bodies(url: str, check: str) -> float:
    """`image_factory_whole_bodies_total{check=...}` of the service at `url`."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    series = f'image_factory_whole_bodies_total{{check="{check}"}} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(series))


def hashed_throughput(url: str, blob: Path, runs: int = 3) -> float:
    """Median MiB/s of whole downloads the web process must hash: before each, the blob's
    times are put back as they are, which moves its ctime, so no verified stamp matches (its
    size, mtime and inode, which the per-process check looks at, stay)."""
    speeds = []
    for _ in range(runs):
        times = blob.stat()
        os.utime(blob, ns=(times.st_atime_ns, times.st_mtime_ns))
        speeds.append(throughput(url, runs=1))
    return statistics.median(speeds)


def healthz_under_slow_clients(url: str, port: int, store: Store) -> dict[str, float]:
    """`/healthz` p50/p99 (ms) while slow clients and event streams of a queued build hold
    connections open."""
    sid = save_schematic(store, parse_schematic(b"customization:\n  extraKernelArgs: [slow]\n"))
    body = json.dumps({"schematic": sid, "version": VERSION, "path": SMALL_PATH}).encode()
    request = urllib.request.Request(
        f"{url}/builds", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        key = json.load(response)["key"]
    found = []
    with ExitStack() as clients:
        open_slow_clients(port, f"/builds/{key}/events", clients)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(HEALTHZ_SAMPLES):
            started = time.perf_counter()
            connection.request("GET", "/healthz")
            with connection.getresponse() as answer:
                answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"/healthz: {answer.status}")
            found.append(time.perf_counter() - started)
            time.sleep(0.01)
    found.sort()
    return {"p50": 1000 * found[len(found) // 2], "p99": 1000 * found[int(len(found) * 0.99)]}


# --- the benchmark --------------------------------------------------------------------------


def run(work: Path) -> dict[str, object]:
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    source = reference(work)
    data = big_file(work / "big.bin")
    small = work / "small.bin"
    small.write_bytes(b"talos.platform=metal console=ttyS0 bench=small\n")
    results: dict[str, object] = {"load_start": os.getloadavg()[0]}

    with ExitStack() as stack:
        # The embedded default on a fresh data directory.
        embedded_dir = work / "embedded"
        shutil.rmtree(embedded_dir, ignore_errors=True)
        settings = Settings(data_dir=embedded_dir)
        store = LocalStore(embedded_dir / "store")
        stock(store, settings, source, work / "tmp")
        big_sid = publish(store, settings, BIG_SCHEMATIC, SMALL_PATH, data)
        small_sid = publish(store, settings, SMALL_SCHEMATIC, SMALL_PATH, small)
        port = free_port()
        env = {
            "IMAGE_FACTORY_DATA_DIR": str(embedded_dir),
            "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
        }
        url, pid = stack.enter_context(serve("embedded", env, port, logs))
        watch = RssWatch(pid)
        small_path = f"/image/{small_sid}/{VERSION}/{SMALL_PATH}"
        big_path = f"/image/{big_sid}/{VERSION}/{SMALL_PATH}"
        # The very first download of the big blob: its web process hashes the whole blob
        # (its first check), then sends it under the stamp that hash verified.
        results["stream_factory_first"] = throughput(url + big_path, runs=1)
        # First serve of each blob in each web process verifies it: not part of the figures.
        for _ in range(8):
            throughput(url + big_path, runs=1)
            latency(url, small_path, 2)
        blob_dir = embedded_dir / "store" / "blobs" / "sha256"
        nginx_url = stack.enter_context(nginx(blob_dir, logs))
        small_blob = "/" + hashlib.sha256(small.read_bytes()).hexdigest()
        big_blob = "/" + hashlib.sha256(data.read_bytes()).hexdigest()
        for clients in (1, 50):
            results[f"hit_factory_{clients}"] = latency(url, small_path, clients)
            results[f"hit_nginx_{clients}"] = latency(nginx_url, small_blob, clients)
        hashed_before = whole_bodies(url, "hashed")
        results["stream_factory_hashed"] = hashed_throughput(
            url + big_path, blob_dir / big_blob.removeprefix("/")
        )
        results["stream_factory_hashed_count"] = whole_bodies(url, "hashed") - hashed_before
        # A stamp is remembered once its ctime has settled (1 s); then each web process
        # remembers it at its next (hashed) download.
        time.sleep(1.5)
        for _ in range(6):
            throughput(url + big_path, runs=1)
        stamp_before = whole_bodies(url, "stamp")
        results["stream_factory_local"] = throughput(url + big_path)
        results["stream_factory_local_by_stamp"] = whole_bodies(url, "stamp") - stamp_before
        results["stream_nginx"] = throughput(nginx_url + big_blob)
        results["rss_embedded_kib"] = watch.stop()

        # The scaled web service: Redis and S3.
        for name in ("redis", "weed"):
            shutil.rmtree(work / name, ignore_errors=True)
            (work / name).mkdir()
        redis = stack.enter_context(running_redis(work / "redis"))
        s3: S3Server = stack.enter_context(running_weed(work / "weed"))
        scaled_dir = work / "scaled"
        shutil.rmtree(scaled_dir, ignore_errors=True)
        port = free_port()
        env = {
            "IMAGE_FACTORY_DATA_DIR": str(scaled_dir),
            "IMAGE_FACTORY_EXTERNAL_URL": f"http://127.0.0.1:{port}",
            "IMAGE_FACTORY_BROKER_URL": redis.url,
            "IMAGE_FACTORY_S3_ENDPOINT": s3.endpoint,
            "IMAGE_FACTORY_S3_BUCKET": "bench",
            "IMAGE_FACTORY_S3_ACCESS_KEY": s3.access_key,
            "IMAGE_FACTORY_S3_SECRET_KEY": s3.secret_key,
            # The PXE host streams; requests for any other host name get the redirect.
            "IMAGE_FACTORY_PXE_URL": f"http://127.0.0.1:{port}",
            "IMAGE_FACTORY_SIGNING_KEY": str(scaled_dir / "keys" / "signing-key.pem"),
            "IMAGE_FACTORY_SECUREBOOT_KEY": str(scaled_dir / "keys" / "sb-key.pem"),
            "IMAGE_FACTORY_SECUREBOOT_CERT": str(scaled_dir / "keys" / "sb-cert.pem"),
        }
        scaled_settings = Settings.from_env(env)
        s3_store = S3Store.from_settings(scaled_settings)
        stock(s3_store, scaled_settings, source, work / "tmp")
        # What `prepare` does with the keys: serve refuses to start without them recorded.
        record_keys(
            s3_store,
            load_or_create_signing_key(scaled_settings, create_configured=True),
            load_or_create_secureboot_key(scaled_settings, create_configured=True),
        )
        big_sid = publish(s3_store, scaled_settings, BIG_SCHEMATIC, SMALL_PATH, data)
        small_sid = publish(s3_store, scaled_settings, SMALL_SCHEMATIC, SMALL_PATH, small)
        url, pid = stack.enter_context(serve("scaled", env, port, logs))
        redirect_host = {"Host": f"factory.bench:{port}"}
        watch = RssWatch(pid)
        small_path = f"/image/{small_sid}/{VERSION}/{SMALL_PATH}"
        big_path = f"/image/{big_sid}/{VERSION}/{SMALL_PATH}"
        for _ in range(8):
            throughput(url + big_path, runs=1)
            latency(url, small_path, 2, redirect_host, expect=302)
        for clients in (1, 50):
            results[f"redirect_{clients}"] = latency(
                url, small_path, clients, redirect_host, expect=302
            )
        results["healthz_slow_clients"] = healthz_under_slow_clients(url, port, s3_store)
        results["stream_factory_s3"] = throughput(url + big_path)
        presigned = s3_store.url_for(f"blobs/sha256/{big_blob.removeprefix('/')}", None, 600)
        assert presigned is not None
        results["stream_s3_direct"] = throughput(presigned)
        results["rss_scaled_kib"] = watch.stop()
    results["load_end"] = os.getloadavg()[0]
    return results


def machine() -> str:
    mem = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )  # fmt: skip
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem / (1 << 20):.1f} GiB RAM, kernel {platform.release()}"
    )


def report(results: dict[str, object]) -> str:
    def lat(name: str) -> dict[str, float]:
        found = results[name]
        assert isinstance(found, dict)
        return found

    rows = []
    for clients in (1, 50):
        f, n = lat(f"hit_factory_{clients}"), lat(f"hit_nginx_{clients}")
        rows.append(
            f"| cache hit, {clients} client{'s' if clients > 1 else ''} | "
            f"{f['p50']:.2f} / {f['p99']:.2f} ms ({f['rps']:.0f}/s) | "
            f"{n['p50']:.2f} / {n['p99']:.2f} ms ({n['rps']:.0f}/s) |"
        )
    for clients in (1, 50):
        r = lat(f"redirect_{clients}")
        rows.append(
            f"| 302 to presigned S3 URL, {clients} client{'s' if clients > 1 else ''} | "
            f"{r['p50']:.2f} / {r['p99']:.2f} ms ({r['rps']:.0f}/s) | — |"
        )
    slow = lat("healthz_slow_clients")
    rows.append(
        f"| `/healthz` with {IDLE} idle + {SLOW} slow + {STREAMS} event-stream connections "
        f"open (scaled) | {slow['p50']:.2f} / {slow['p99']:.2f} ms | — |"
    )
    local, ngx = float(str(results["stream_factory_local"])), float(str(results["stream_nginx"]))
    hashed, first = (
        float(str(results["stream_factory_hashed"])),
        float(str(results["stream_factory_first"])),
    )
    by_stamp = int(float(str(results["stream_factory_local_by_stamp"])))
    hashed_count = int(float(str(results["stream_factory_hashed_count"])))
    via_s3, direct = (
        float(str(results["stream_factory_s3"])),
        float(str(results["stream_s3_direct"])),
    )
    rss = max(int(str(results["rss_embedded_kib"])), int(str(results["rss_scaled_kib"]))) / 1024
    redirect_p50 = lat("redirect_1")["p50"]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START_MARK,
        "# Serving benchmark",
        "",
        "Written by `python bench/serve.py` (loopback; 2 gunicorn web processes, gevent",
        f"workers; latency: {LATENCY_SECONDS:.0f} s of keep-alive clients per figure; "
        f"throughput: a {BIG >> 20} MiB asset, curl, median of 3 unless said).",
        "",
        f"Machine: {machine()}; {when}; load average {results['load_start']:.1f} at the start, "
        f"{results['load_end']:.1f} at the end. Shared with other jobs: figures move between "
        "runs, compare those of one run.",
        "",
        "| request | factory p50 / p99 | nginx (same file) p50 / p99 |",
        "|---|---:|---:|",
        *rows,
        "",
        "| streamed throughput | MiB/s |",
        "|---|---:|",
        "| factory, local store: repeat downloads (`sendfile` under the file stamp a whole "
        f"hash verified; {by_stamp} of 3 went so) | {local:.0f} |",
        "| factory, local store: hashed on the wire (no verified stamp: the file's ctime "
        f"moved; {hashed_count} of 3 hashed) | {hashed:.0f} |",
        "| factory, local store: first download in a web process (whole blob hashed by the "
        f"first check, then `sendfile`; one run) | {first:.0f} |",
        f"| nginx, same file | {ngx:.0f} |",
        f"| factory, streamed from S3 | {via_s3:.0f} |",
        f"| S3 (SeaweedFS) directly | {direct:.0f} |",
        "",
        "## Targets",
        "",
        "| target | measured | goal | met |",
        "|---|---:|---:|---|",
        f"| redirect p50 (1 client) | {redirect_p50:.2f} ms | ≤ 5 ms | "
        f"{'yes' if redirect_p50 <= 5 else '**no**'} |",
        f"| streamed / nginx (repeat downloads, `sendfile` under a verified stamp) | "
        f"{local / ngx:.2f} | ≥ 0.8 | {'yes' if local / ngx >= 0.8 else '**no**'} |",
        f"| streamed / nginx, hashed on the wire | {hashed / ngx:.2f} | — | — |",
        f"| streamed / nginx, first download in a web process | {first / ngx:.2f} | — | — |",
        f"| streamed from S3 / S3 directly | {via_s3 / direct:.2f} | — | — |",
        f"| largest web process RSS under load | {rss:.0f} MiB | ≤ 150 MiB | "
        f"{'yes' if rss <= 150 else '**no**'} |",
        "",
        "Issue 12: a blob changed at rest (size and mtime put back) must never reach a client",
        "complete. When a web process hashes a whole local file and it matches the build (its",
        "first check of the blob, or a download hashed on the wire), the file's stamp (device,",
        "inode, size, mtime, ctime) is remembered with the digest. Whole downloads of a file",
        "showing that stamp go out with `sendfile`; the last chunk is read, the stamp checked",
        "again, then sent: any write moves ctime and no call puts it back",
        "(`workers/outputs/file_stamps.py` says what this does not catch). Any other whole body",
        "is read, hashed and sent, the last chunk held until the digest matched. A stamp is",
        "trusted 10 minutes per web process, then the next download is hashed again. nginx",
        "`sendfile`s without looking. The hashed way is bound by one core's sha256; hashing",
        "each chunk on a native thread while the previous one is sent did not help inside the",
        "web process (see the note below). Ranges go out with `sendfile` as before.",
        END_MARK,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench-serve"))
    args = parser.parse_args()
    results = run(args.work)
    print(json.dumps(results, indent=1))
    section = report(results)
    print(section)
    write_section(args.out, section, START_MARK, END_MARK, first=False)


if __name__ == "__main__":
    main()
