"""`GET|HEAD /image/<id>/<version>/<path>`: errors as upstream words them, headers, caching,
conditional and range requests, checksums and signatures, async builds; a real build worker
(in a thread) builds what the requests ask for."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from extensions.tree import Tree
from factory import create_app
from factory import images as images_module
from factory.delivery import CorruptBlob
from factory.engine import ENGINE_KEY
from factory.images import _redirect_allowed
from schematics import parse_schematic
from tests.factory.served import Served, served
from workers.assembly.run import ToolError, run_tool
from workers.backends import choose_backend
from workers.engine import Engine
from workers.outputs.finished_builds import BUILDS_PREFIX, build_manifest_key, read_manifest
from workers.outputs.schematics_store import load_schematic, save_schematic
from workers.pipeline import build_asset as build_module
from workers.pipeline import build_once as builds_module
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served(tmp_path_factory) as found:
        yield found


def _new_schematic(srv: Served, marker: str) -> str:
    body = f"customization:\n  extraKernelArgs: [factory.test={marker}]\n".encode()
    return save_schematic(srv.store, parse_schematic(body))


def test_kernel_is_streamed_with_upstream_headers(srv: Served) -> None:
    # The first (cold) download streams before the build is published (test_cold_stream.py);
    # a built asset has every header.
    cold = srv.client.get(srv.url("kernel-amd64")).data  # read whole: the build is published
    response = srv.client.get(srv.url("kernel-amd64"))
    assert response.status_code == 200
    assert response.data == cold
    assert response.data.startswith(b"MZ fake vmlinuz")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Content-Disposition"] == 'attachment; filename="kernel-amd64"'
    assert response.headers["ETag"] == f'"{hashlib.sha256(response.data).hexdigest()}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Last-Modified"].endswith(" GMT")


def test_version_without_v_and_arch_alias(srv: Served) -> None:
    one = srv.client.get(srv.url("kernel-amd64"))
    other = srv.client.get(f"/image/{srv.schematic_id}/1.0.0/kernel-x86_64")
    assert other.status_code == 200
    assert other.data == one.data
    assert other.headers["Content-Disposition"] == 'attachment; filename="kernel-x86_64"'


def test_cmdline(srv: Served) -> None:
    response = srv.client.get(srv.url("cmdline-metal-amd64"))
    assert response.status_code == 200
    assert response.data == b"talos.platform=metal console=ttyS0"


def test_alibabacloud_is_a_platform(srv: Served) -> None:
    response = srv.client.get(srv.url("cmdline-alibabacloud-amd64"))
    assert response.status_code == 200
    assert response.data.startswith(b"talos.platform=alibabacloud ")


def test_head_sends_headers_only(srv: Served) -> None:
    response = srv.client.head(srv.url("cmdline-aws-amd64"))
    assert response.status_code == 200
    assert response.data == b""
    full = srv.client.get(srv.url("cmdline-aws-amd64"))
    assert response.headers["Content-Length"] == str(len(full.data))
    assert response.headers["ETag"] == full.headers["ETag"]


def test_second_request_is_served_from_the_store(
    srv: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = srv.client.get(srv.url("kernel-amd64"))
    assert list(srv.store.list(BUILDS_PREFIX))

    def no_builds(*args: object, **kwargs: object) -> Path:
        raise AssertionError("built twice")

    monkeypatch.setattr(builds_module, "build_asset", no_builds)
    again = srv.client.get(srv.url("kernel-amd64"))
    assert again.status_code == 200
    assert again.data == first.data


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        (
            "/image/{id}/v1.0.0/kernel-foo",
            400,
            'error parsing profile from path: invalid architecture: "foo"\n',
        ),
        (
            "/image/{id}/v1.0.0/metal-amd64.vmdk",
            400,
            'error parsing profile from path: invalid profile path: "metal-amd64.vmdk"\n',
        ),
        ("/image/{id}/1.x/kernel-amd64", 400, 'invalid version "1.x"\n'),
        ("/image/{id}/v9.9.9/kernel-amd64", 404, "version v9.9.9 is not available for amd64\n"),
        ("/image/{id}/v1.0.0/metal-arm64.iso", 404, "version v1.0.0 is not available for arm64"),
        ("/image/{id}/v1.0.0/kernel-foo.sha256", 400, 'invalid architecture: "foo"'),
        ("/image/{id}/v1.0.0/kernel-amd64?filename=%0A.%20.", 400, "invalid filename"),
        (
            f"/image/{'0' * 64}/v1.0.0/kernel-amd64",
            404,
            f'schematic ID "{"0" * 64}" not found\n',
        ),
    ],
)
def test_errors(srv: Served, path: str, status: int, body: str) -> None:
    response = srv.client.get(path.format(id=srv.schematic_id))
    assert response.status_code == status
    assert body in response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.integration
def test_initramfs_content_type(srv: Served) -> None:
    response = srv.client.get(srv.url("initramfs-amd64.xz"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-xz"
    assert response.data.startswith(b"MZ fake initramfs.xz")


# --- conditional and range requests ---------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(srv: Served) -> bytes:
    data: bytes = srv.client.get(srv.url("kernel-amd64")).data
    return data


def test_if_none_match_and_if_modified_since_give_304(srv: Served, kernel: bytes) -> None:
    etag = f'"{hashlib.sha256(kernel).hexdigest()}"'
    matching = srv.client.get(srv.url("kernel-amd64"), headers={"If-None-Match": etag})
    assert matching.status_code == 304
    assert matching.data == b""
    assert matching.headers["ETag"] == etag
    other = srv.client.get(srv.url("kernel-amd64"), headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    later = formatdate(time.time() + 3600, usegmt=True)
    since = srv.client.get(srv.url("kernel-amd64"), headers={"If-Modified-Since": later})
    assert since.status_code == 304
    earlier = formatdate(0, usegmt=True)
    changed = srv.client.get(srv.url("kernel-amd64"), headers={"If-Modified-Since": earlier})
    assert changed.status_code == 200


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [("bytes=0-9", 0, 10), ("bytes=5-", 5, None), ("bytes=-7", -7, None), ("bytes=3-3", 3, 4)],
)
def test_single_ranges_are_206(
    srv: Served, kernel: bytes, header: str, start: int, stop: int | None
) -> None:
    response = srv.client.get(srv.url("kernel-amd64"), headers={"Range": header})
    expected = kernel[start:stop]
    first = start % len(kernel)
    assert response.status_code == 206
    assert response.data == expected
    assert response.headers["Content-Length"] == str(len(expected))
    assert response.headers["Content-Range"] == (
        f"bytes {first}-{first + len(expected) - 1}/{len(kernel)}"
    )


def test_unsatisfiable_range_is_416_and_odd_ranges_get_everything(
    srv: Served, kernel: bytes
) -> None:
    url = srv.url("kernel-amd64")
    beyond = srv.client.get(url, headers={"Range": f"bytes={len(kernel)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(kernel)}"
    # An empty suffix asks for no bytes at all (RFC 9110 §14.1.2): unsatisfiable too.
    for empty in ("bytes=-0", "bytes= -000 ", f"bytes={len(kernel) + 5}-{len(kernel) + 9}"):
        nothing = srv.client.get(url, headers={"Range": empty})
        assert nothing.status_code == 416, empty
        assert nothing.data == b""
        assert nothing.headers["Content-Range"] == f"bytes */{len(kernel)}"
    for header in ("bytes=0-1,4-5", "items=0-1", "bytes=x-y", "bytes=5-2"):
        whole = srv.client.get(url, headers={"Range": header})
        assert whole.status_code == 200, header
        assert whole.data == kernel


def test_if_range_honours_the_range_only_while_the_etag_matches(srv: Served, kernel: bytes) -> None:
    url = srv.url("kernel-amd64")
    etag = f'"{hashlib.sha256(kernel).hexdigest()}"'
    same = srv.client.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert same.status_code == 206
    assert same.data == kernel[:4]
    stale = srv.client.get(url, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert stale.status_code == 200
    assert stale.data == kernel
    weak = srv.client.get(url, headers={"Range": "bytes=0-3", "If-Range": "W/" + etag})
    assert weak.status_code == 200


def tamper_keeping_size_and_mtime(path: Path, offset: int) -> None:
    """Change one byte in place and put the mtime back, as a bad disk or an intruder could:
    the stored version (size, mtime, inode) is the same, the bytes are not."""
    before = path.stat()
    with path.open("r+b") as blob:
        blob.seek(offset)
        old = blob.read(1)
        blob.seek(offset)
        blob.write(bytes([old[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_bytes_changed_under_the_same_mtime_never_reach_a_client_complete(srv: Served) -> None:
    # The command line: a blob of its own (a kernel's blob is the release's, shared).
    url = f"/image/{_new_schematic(srv, 'tamper')}/v1.0.0/cmdline-metal-amd64"
    good = srv.client.get(url).data
    sha = hashlib.sha256(good).hexdigest()
    before = srv.client.get("/metrics").get_data(as_text=True).count("corrupt_blobs_total 1")
    tamper_keeping_size_and_mtime(srv.store.path(f"blobs/sha256/{sha}"), len(good) - 2)

    # The body's only chunk is its last: held back, hashed, refused; the WSGI iteration
    # fails (the server cuts the connection: see test_embedded_mode for a real client).
    with pytest.raises(CorruptBlob, match="does not match its sha256"):
        srv.client.get(url)
    metrics = srv.client.get("/metrics").get_data(as_text=True)
    assert metrics.count("corrupt_blobs_total 1") == before + 1

    again = srv.client.get(url)  # the build was discarded: this one rebuilds it
    assert again.status_code == 200
    assert again.data == good


def test_a_range_is_served_only_from_a_blob_hashed_whole_lately(
    srv: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/image/{_new_schematic(srv, 'tamper-range')}/v1.0.0/cmdline-metal-amd64"
    good = srv.client.get(url).data
    sha = hashlib.sha256(good).hexdigest()
    tamper_keeping_size_and_mtime(srv.store.path(f"blobs/sha256/{sha}"), 3)
    monkeypatch.setattr(images_module, "RANGE_REHASH_SECONDS", 0.0)  # "lately" has passed

    response = srv.client.get(url, headers={"Range": "bytes=0-9"})

    assert response.status_code == 206
    assert response.data == good[:10]  # from the rebuilt blob, not the tampered one
    assert hashlib.sha256(srv.store.path(f"blobs/sha256/{sha}").read_bytes()).hexdigest() == sha


# --- checksums, signatures, file names ------------------------------------------------------


def test_checksum_suffixes_give_sha256sum_lines(srv: Served, kernel: bytes) -> None:
    for algorithm in ("sha256", "sha512"):
        response = srv.client.get(srv.url(f"kernel-amd64.{algorithm}?filename=vmlinuz"))
        digest = hashlib.new(algorithm, kernel).hexdigest()
        assert response.status_code == 200
        assert response.data == f"{digest}  vmlinuz\n".encode()
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="vmlinuz.{algorithm}"'
        )


def test_sigstore_bundle_verifies_with_the_published_key(srv: Served, kernel: bytes) -> None:
    response = srv.client.get(srv.url("kernel-amd64.sigstore.json"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="kernel-amd64.sigstore.json"'
    )
    bundle = response.get_json()
    digest = base64.b64decode(bundle["messageSignature"]["messageDigest"]["digest"])
    assert digest == hashlib.sha256(kernel).digest()
    pem = srv.client.get("/oci/cosign/signing-key.pub")
    assert pem.headers["Content-Type"] == "application/x-pem-file"
    key = serialization.load_pem_public_key(pem.data)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(bundle["messageSignature"]["signature"])
    key.verify(signature, kernel, ec.ECDSA(hashes.SHA256()))  # raises when it does not verify


def test_the_bundle_is_signed_when_the_build_is_published(srv: Served) -> None:
    sid = _new_schematic(srv, "signed")
    srv.client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64")
    served_bundle = srv.client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64.sigstore.json")
    keys = [k for k in srv.store.list(BUILDS_PREFIX) if k.endswith("/manifest.json")]
    stored = [read_manifest(srv.store, k.split("/")[1]) for k in keys]
    bundles = [b.sigstore_bundle for b in stored if b is not None and b.sigstore_bundle]
    assert served_bundle.get_json() in bundles


def test_a_bundle_from_another_key_is_not_served_but_the_build_made_again(srv: Served) -> None:
    """The web side cannot sign: a stored build signed with a key the deployment no longer
    uses (or not at all) is built again by a worker, whose bundle is then served."""
    sid = _new_schematic(srv, "resigned")
    url = f"/image/{sid}/v1.0.0/cmdline-metal-amd64"
    assert srv.client.get(url).status_code == 200
    schematic = load_schematic(srv.store, sid)
    profile = parse_profile("cmdline-metal-amd64")
    key = make_plan(srv.store, schematic, sid, "v1.0.0", profile, srv.settings).key
    manifest_key = build_manifest_key(key)
    doc = json.loads(srv.store.get_bytes(manifest_key))
    doc["sigstore_bundle"]["verificationMaterial"]["publicKey"]["hint"] = "another key"
    srv.store.put_bytes(manifest_key, json.dumps(doc).encode())
    engine: Engine = srv.client.application.extensions["image_factory_engine"]
    engine.forget_build(key)

    served_bundle = srv.client.get(f"{url}.sigstore.json")

    assert served_bundle.status_code == 200
    rebuilt = read_manifest(srv.store, key)
    assert rebuilt is not None
    assert rebuilt.sigstore_bundle is not None
    assert rebuilt.sigstore_bundle["verificationMaterial"]["publicKey"]["hint"] != "another key"
    assert served_bundle.get_json() == rebuilt.sigstore_bundle


def test_hostile_filenames_are_cleaned(srv: Served) -> None:
    url = srv.url("kernel-amd64")
    cases = {
        "a\r\nSet-Cookie: x=1": 'attachment; filename="aSet-Cookie: x=1"',
        "../../etc/passwd": 'attachment; filename="_.._etc_passwd"',
        'x";y=z': 'attachment; filename="x__y=z"',
        "..\\win.iso": 'attachment; filename="_win.iso"',
        "\u202eosi.exe": 'attachment; filename="osi.exe"',
        "café.iso": "attachment; filename=\"caf_.iso\"; filename*=UTF-8''caf%C3%A9.iso",
    }
    for name, expected in cases.items():
        response = srv.client.get(url, query_string={"filename": name})
        assert response.status_code == 200, name
        assert response.headers["Content-Disposition"] == expected, name
        assert "Set-Cookie" not in response.headers


# --- builds through the queue ---------------------------------------------------------------


def test_prefer_respond_async_answers_202_with_the_build(srv: Served) -> None:
    sid = _new_schematic(srv, "async")
    response = srv.client.get(
        f"/image/{sid}/v1.0.0/cmdline-metal-amd64", headers={"Prefer": "respond-async"}
    )
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/builds/{body['key']}"
    assert response.headers["Retry-After"].isdigit()
    assert body["status_url"] == f"/builds/{body['key']}"
    assert body["download_url"] == f"/image/{sid}/v1.0.0/cmdline-metal-amd64"
    deadline = time.monotonic() + 60
    while srv.client.get(body["status_url"]).get_json()["state"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done = srv.client.get(body["download_url"])
    assert done.data.startswith(b"talos.platform=metal")


def test_a_failed_build_is_a_500_that_says_why(
    srv: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: object, **kwargs: object) -> Path:
        raise ToolError(["mksquashfs", "x"], 1, "boom")

    monkeypatch.setattr(builds_module, "build_asset", failing)
    sid = _new_schematic(srv, "fails")
    response = srv.client.get(f"/image/{sid}/v1.0.0/cmdline-metal-amd64")
    assert response.status_code == 500
    assert response.get_data(as_text=True) == (
        "building cmdline-metal-amd64 failed: a build step failed: "
        "mksquashfs exited with status 1\n"
    )


def test_a_failed_tool_is_told_in_the_schematic_s_terms_without_internals(
    srv: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real tool fails inside a real build (mksquashfs on a source that is not there): the
    answer names the layer and the tool, never the command line or a work path."""

    def broken_layer(tree: Tree, dest: Path, *, epoch: int) -> Path:
        run_tool(["mksquashfs", dest.parent / "not-there", dest, "-noappend"])
        return dest

    monkeypatch.setattr(build_module, "make_tree_layer", broken_layer)
    sid = _new_schematic(srv, "a-tool-fails")
    # The checksum waits for the build (a cold GET of the initramfs itself would already be
    # streaming its base: its failure cuts the connection, tests/factory/test_cold_stream.py).
    response = srv.client.get(f"/image/{sid}/v1.0.0/initramfs-amd64.xz.sha256")
    assert response.status_code == 500
    said = response.get_data(as_text=True)
    assert said == (
        "building initramfs-amd64.xz failed: building the schematic's own layer: "
        "mksquashfs exited with status 1\n"
    )
    schematic = load_schematic(srv.store, sid)
    profile = parse_profile("initramfs-amd64.xz")
    key = make_plan(srv.store, schematic, sid, "v1.0.0", profile, srv.settings).key
    failed = srv.client.get(f"/builds/{key}").get_json()
    assert failed["state"] == "failed"
    assert failed["error"] == said.removeprefix("building initramfs-amd64.xz failed: ").strip()
    status = json.dumps(failed)
    for text in (said, status):
        assert str(srv.settings.data_dir) not in text
        assert "build-" not in text
        assert "not-there" not in text  # nothing of the command line or its stderr


def test_a_corrupt_blob_is_rebuilt_not_served(srv: Served) -> None:
    sid = _new_schematic(srv, "corrupt")
    url = f"/image/{sid}/v1.0.0/cmdline-metal-amd64"
    good = srv.client.get(url).data
    blob = srv.store.path(f"blobs/sha256/{hashlib.sha256(good).hexdigest()}")
    blob.write_bytes(b"X" * len(good))

    again = srv.client.get(url)

    assert again.status_code == 200
    assert again.data == good
    assert blob.read_bytes() == good


def test_a_full_queue_is_503(tmp_path: Path, srv: Served) -> None:
    settings = Settings(data_dir=tmp_path / "data", max_queue=0)
    client = create_app(settings, store=srv.store).test_client()
    response = client.get(f"/image/{_new_schematic(srv, 'full')}/v1.0.0/cmdline-metal-amd64")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "the build queue is full" in response.get_data(as_text=True)


def test_made_up_methods_and_paths_do_not_grow_the_metrics(srv: Served) -> None:
    def probe(batch: int) -> None:
        for i in range(150):
            srv.client.open(f"/healthz-{batch}-{i}", method=f"X{batch}M{i}")
            srv.client.open(srv.url("kernel-amd64"), method=f"Y{batch}M{i}")

    probe(0)
    srv.client.get("/metrics")  # so that its own series exists from here on
    series = srv.client.get("/metrics").get_data(as_text=True).splitlines()
    probe(1)
    text = srv.client.get("/metrics").get_data(as_text=True)
    assert len(text.splitlines()) == len(series)  # only values changed: no new series
    assert len(text) < len("\n".join(series)) + 1000
    assert 'route="<unmatched>",method="OTHER",status="404"} 300' in text
    assert 'route="<unmatched>",method="OTHER",status="405"} 300' in text  # no rule matched
    assert "X1M" not in text
    assert "healthz-" not in text


def test_metrics_count_hits_misses_and_requests(srv: Served) -> None:
    srv.client.get(srv.url("kernel-amd64"))
    text = srv.client.get("/metrics").get_data(as_text=True)
    assert 'image_factory_cache_hits_total{kind="kernel"}' in text
    assert 'image_factory_builds_total{kind="kernel"} 1\n' in text
    route = "/image/<schematic_id>/<version>/<path>"
    assert f'image_factory_http_requests_total{{route="{route}",method="GET",status="200"}}' in text
    assert "image_factory_queue_depth 0\n" in text


@pytest.mark.parametrize(
    ("pxe_url", "host", "method", "redirected"),
    [
        ("", "127.0.0.1:8080", "GET", True),  # no PXE URL: the external URL's host is no exception
        ("", "factory.example", "HEAD", False),
        ("http://pxe.example:8080", "pxe.example:8080", "GET", False),
        ("http://pxe.example:8080", "127.0.0.1:8080", "GET", True),
    ],
)
def test_only_a_configured_pxe_host_is_exempt_from_s3_redirects(
    app: Flask, store: LocalStore, pxe_url: str, host: str, method: str, redirected: bool
) -> None:
    settings = Settings(external_url="http://127.0.0.1:8080", pxe_url=pxe_url)
    with app.test_request_context("/", base_url=f"http://{host}", method=method):
        assert _redirect_allowed(Engine(settings, choose_backend(settings), store)) is redirected


def test_a_cache_hit_is_one_metrics_write_that_counts_hit_and_request(
    srv: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(2):  # built (or found), then a hit: both series exist from here on
        srv.client.get(srv.url("cmdline-metal-amd64"))
    counters = srv.client.application.extensions[ENGINE_KEY].metrics._store
    writes: list[dict[str, float]] = []
    real_add = counters.add

    def recorded(increments: dict[str, float]) -> None:
        writes.append(dict(increments))
        real_add(increments)

    before = srv.client.get("/metrics").get_data(as_text=True)
    monkeypatch.setattr(counters, "add", recorded)
    for _ in range(3):
        assert srv.client.get(srv.url("cmdline-metal-amd64")).status_code == 200
    assert len(writes) == 3
    assert all(any("cache_hits_total" in series for series in write) for write in writes)
    monkeypatch.undo()
    after = srv.client.get("/metrics").get_data(as_text=True)
    hits = 'image_factory_cache_hits_total{kind="cmdline"} '
    route = "/image/<schematic_id>/<version>/<path>"
    requests = f'image_factory_http_requests_total{{route="{route}",method="GET",status="200"}} '

    def value(text: str, prefix: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(prefix))
        return float(line.split()[-1])

    assert value(after, hits) == value(before, hits) + 3
    assert value(after, requests) == value(before, requests) + 3
