"""Where a download's CPU goes: cProfile of cache hits and S3 redirects, in-process.

    python bench/serve_profile.py [--mode local|s3|both] [--requests 2000] [--top 30]

Builds the data `bench/serve.py` serves (the same small asset; the reference release is built
once under `--work`), then loops over the Flask test client: the CPU per request unprofiled
(it includes the test client's own share, so compare runs, not with `serve_tail.py`), then a
profile of as many requests, printed by cumulative and by own time and written to
`<work>/<mode>.prof` for `python -m pstats`. The S3 mode starts Redis and SeaweedFS as the
scaled mode uses them and asks for the redirect (a Host that is not the PXE host).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import serve as bench_serve  # noqa: E402  (bench/serve.py, beside this script)

from factory import create_app  # noqa: E402
from tests.services import running_redis, running_weed  # noqa: E402
from workers.keys.deployment_keys import record_keys  # noqa: E402
from workers.keys.secureboot_key import load_or_create_secureboot_key  # noqa: E402
from workers.keys.signing import load_or_create_signing_key  # noqa: E402
from workers.releases.stored import Release  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.store import LocalStore  # noqa: E402
from workers.store.s3 import S3Store  # noqa: E402


def requests(
    client: FlaskClient, path: str, count: int, headers: dict[str, str], expect: int
) -> None:
    for _ in range(count):
        response = client.get(path, headers=headers)
        if response.status_code != expect:
            raise RuntimeError(f"{path}: {response.status_code}, expected {expect}")
        response.close()


def profile(name: str, client: FlaskClient, path: str, headers: dict[str, str], expect: int,
            count: int, top: int, out: Path) -> None:  # fmt: skip
    requests(client, path, 200, headers, expect)  # warm: first checks, connections, caches
    started = time.process_time()
    requests(client, path, count, headers, expect)
    per_request = (time.process_time() - started) / count * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    requests(client, path, count, headers, expect)
    profiler.disable()
    profiler.dump_stats(out)
    print(f"== {name}: {per_request:.3f} ms CPU per request (unprofiled, test client included)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def local_hit(
    work: Path, source: tuple[LocalStore, Release], small: Path, args: argparse.Namespace
) -> None:
    _data, settings, store, sid = bench_serve.embedded_small(work, source, small)
    client = create_app(settings, store).test_client()
    path = f"/image/{sid}/{bench_serve.VERSION}/{bench_serve.SMALL_PATH}"
    profile(
        "cache hit, local store",
        client,
        path,
        {},
        200,
        args.requests,
        args.top,
        work / "local.prof",
    )


def s3_redirect(
    work: Path, source: tuple[LocalStore, Release], small: Path, args: argparse.Namespace
) -> None:
    with ExitStack() as stack:
        for name in ("redis", "weed"):
            shutil.rmtree(work / name, ignore_errors=True)
            (work / name).mkdir()
        redis = stack.enter_context(running_redis(work / "redis"))
        s3 = stack.enter_context(running_weed(work / "weed"))
        data = work / "scaled"
        shutil.rmtree(data, ignore_errors=True)
        pxe = "http://127.0.0.1:1"
        settings = Settings.from_env(
            {
                "IMAGE_FACTORY_DATA_DIR": str(data),
                "IMAGE_FACTORY_EXTERNAL_URL": pxe,
                "IMAGE_FACTORY_BROKER_URL": redis.url,
                "IMAGE_FACTORY_S3_ENDPOINT": s3.endpoint,
                "IMAGE_FACTORY_S3_BUCKET": "bench",
                "IMAGE_FACTORY_S3_ACCESS_KEY": s3.access_key,
                "IMAGE_FACTORY_S3_SECRET_KEY": s3.secret_key,
                "IMAGE_FACTORY_PXE_URL": pxe,
                "IMAGE_FACTORY_SIGNING_KEY": str(data / "keys" / "signing-key.pem"),
                "IMAGE_FACTORY_SECUREBOOT_KEY": str(data / "keys" / "sb-key.pem"),
                "IMAGE_FACTORY_SECUREBOOT_CERT": str(data / "keys" / "sb-cert.pem"),
            }
        )
        store = S3Store.from_settings(settings)
        bench_serve.stock(store, settings, source, work / "tmp")
        record_keys(
            store,
            load_or_create_signing_key(settings, create_configured=True),
            load_or_create_secureboot_key(settings, create_configured=True),
        )
        sid = bench_serve.publish(
            store, settings, bench_serve.SMALL_SCHEMATIC, bench_serve.SMALL_PATH, small
        )
        client = create_app(settings, store).test_client()
        path = f"/image/{sid}/{bench_serve.VERSION}/{bench_serve.SMALL_PATH}"
        redirected = {"Host": "factory.bench"}
        profile(
            "302 to presigned S3 URL",
            client,
            path,
            redirected,
            302,
            args.requests,
            args.top,
            work / "s3.prof",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/factory-bench-profile"))
    parser.add_argument("--mode", choices=("local", "s3", "both"), default="both")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    source = bench_serve.reference(work)
    small = work / "small.bin"
    small.write_bytes(b"talos.platform=metal console=ttyS0 bench=small\n")
    if args.mode in ("local", "both"):
        local_hit(work, source, small, args)
    if args.mode in ("s3", "both"):
        s3_redirect(work, source, small, args)


if __name__ == "__main__":
    main()
