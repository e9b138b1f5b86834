"""Download checks with real clients, run against every deployment (`tests/factory/stacks`).

curl (`-JO` with the server's file name, `-C -` resume, `-r` ranges, conditional requests),
`sha256sum -c` / `sha512sum -c` on the checksum files, and `openssl dgst -sha256 -verify` on
the signature from the Sigstore bundle with the key from `/oci/cosign/signing-key.pub`.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from tests.factory.stacks import Stack


def headers_of(output: bytes) -> dict[str, str]:
    """The last response's headers from `curl -D -` output (lower-case names)."""
    blocks = output.decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")
    found: dict[str, str] = {}
    for line in blocks[-1].splitlines()[1:]:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return found


def status_of(output: bytes) -> int:
    blocks = output.decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")
    return int(blocks[-1].split()[1])


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_all(stack: Stack, url: str, out: Path, count: int) -> list[str]:
    """`count` concurrent curl downloads of `url`; the sha256 of each."""
    out.mkdir(parents=True, exist_ok=True)

    def one(number: int) -> str:
        target = out / f"copy-{number}"
        done = stack.curl("--fail", "-o", str(target), url, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return sha256_of(target)

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def check_downloads(stack: Stack, schematic: str, path: str, work: Path) -> str:
    """Every client-side check on `/image/<schematic>/v1.0.0/<path>` (built by now); the
    asset's sha256."""
    url = f"/image/{schematic}/v1.0.0/{path}"
    work.mkdir(parents=True, exist_ok=True)

    # curl -JO: saved under the name from Content-Disposition.
    stack.curl("--fail", "-JO", url, cwd=work)
    asset = work / path
    digest = sha256_of(asset)
    size = asset.stat().st_size

    # HEAD: the same headers, no body.
    head = stack.curl("--fail", "-I", url)
    headers = headers_of(head.stdout)
    assert headers["content-length"] == str(size)
    assert headers["etag"] == f'"{digest}"'
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-disposition"] == f'attachment; filename="{path}"'
    assert "last-modified" in headers
    # Exactly one Server header, ours (gunicorn's own is replaced).
    servers = re.findall(rb"^server:(.*)$", head.stdout, re.I | re.M)
    assert [value.strip() for value in servers] == [
        f"Image Factory {version('image-factory')}".encode()
    ]

    # sha256sum -c / sha512sum -c on the checksum files, next to the asset.
    for algorithm in ("sha256", "sha512"):
        stack.curl("--fail", "-o", str(work / f"{path}.{algorithm}"), f"{url}.{algorithm}")
        checked = subprocess.run(
            [f"{algorithm}sum", "-c", f"{path}.{algorithm}"], cwd=work, capture_output=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.decode() == f"{path}: OK\n"

    # The Sigstore bundle's signature verifies with openssl and the published key.
    stack.curl("--fail", "-o", str(work / "key.pub"), "/oci/cosign/signing-key.pub")
    bundle_call = stack.curl(
        "--fail", "-D", "-", "-o", str(work / "b.json"), f"{url}.sigstore.json"
    )
    assert headers_of(bundle_call.stdout)["content-type"] == (
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    )
    bundle = json.loads((work / "b.json").read_text())
    signature = bundle["messageSignature"]
    assert base64.b64decode(signature["messageDigest"]["digest"]).hex() == digest
    (work / "sig.der").write_bytes(base64.b64decode(signature["signature"]))
    verified = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "key.pub", "-signature", "sig.der", path],
        cwd=work,
        capture_output=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout == b"Verified OK\n"

    # curl -r: a range; -C -: resume a partial download to the right bytes.
    part = work / "part"
    ranged = stack.curl("--fail", "-D", "-", "-r", "100-1123", "-o", str(part), url)
    assert status_of(ranged.stdout) == 206
    assert headers_of(ranged.stdout)["content-range"] == f"bytes 100-1123/{size}"
    assert part.read_bytes() == asset.read_bytes()[100:1124]
    partial = work / "resumed"
    partial.write_bytes(asset.read_bytes()[: size // 3])
    stack.curl("--fail", "-C", "-", "-o", str(partial), url)
    assert sha256_of(partial) == digest

    # Conditional requests: a matching ETag is 304, an If-Range that no longer matches
    # gets the whole asset, a range past the end is 416.
    etag = f'"{digest}"'
    not_modified = stack.curl("-D", "-", "-o", "/dev/null", "-H", f"If-None-Match: {etag}", url)
    assert status_of(not_modified.stdout) == 304
    stale = stack.curl(
        "-D", "-", "-o", "/dev/null", "-H", "If-Range: \"0000\"", "-r", "0-9", url
    )  # fmt: skip
    assert status_of(stale.stdout) == 200
    assert headers_of(stale.stdout)["content-length"] == str(size)
    beyond = stack.curl("-D", "-", "-o", "/dev/null", "-r", f"{size + 10}-", url)
    assert status_of(beyond.stdout) == 416
    assert headers_of(beyond.stdout)["content-range"] == f"bytes */{size}"

    # A hostile ?filename= cannot add a header or a path; a Unicode one is RFC 5987-encoded.
    hostile = stack.curl(
        "-D", "-", "-o", "/dev/null", "--get",
        "--data-urlencode", 'filename=../../etc/x";\r\nSet-Cookie: a=b', url,
    )  # fmt: skip
    hostile_headers = headers_of(hostile.stdout)
    assert "set-cookie" not in hostile_headers
    assert hostile_headers["content-disposition"] == (
        'attachment; filename="_.._etc_x__Set-Cookie: a=b"'
    )
    unicode_name = stack.curl(
        "-D", "-", "-o", "/dev/null", "--get", "--data-urlencode", "filename=café.iso", url
    )
    assert headers_of(unicode_name.stdout)["content-disposition"] == (
        "attachment; filename=\"caf_.iso\"; filename*=UTF-8''caf%C3%A9.iso"
    )
    return digest


def schematic_body(marker: str) -> bytes:
    """A schematic with the `hello` extension, distinct per `marker`."""
    return (
        "customization:\n"
        f"  extraKernelArgs: [factory.test={marker}]\n"
        "  systemExtensions:\n    officialExtensions: [factory/hello]\n"
    ).encode()


def check_single_flight(
    stack: Stack,
    sid: str,
    work: Path,
    build_log: Callable[[], str],
    path: str = "initramfs-amd64.xz",
) -> str:
    """50 concurrent downloads of one uncached asset: one build (metric and `build_log`
    agree), the same bytes for all; the build's key."""
    before = stack.metric("image_factory_builds_total", kind="initramfs")

    digests = download_all(stack, f"/image/{sid}/v1.0.0/{path}", work, 50)

    key = stack.build_key(sid, path)
    status = stack.get_json(f"/builds/{key}")
    assert status["state"] == "done"
    assert set(digests) == {status["sha256"]}
    assert stack.metric("image_factory_builds_total", kind="initramfs") == before + 1
    assert build_log().count(f"build {key} started") == 1
    return key
