"""Real registry clients against a running factory: skopeo pulls and inspects installer
images, the cosign signature is checked the way `cosign verify` checks it (openssl does the
crypto), and errors reach clients as OCI error JSON.

cosign itself is not installable here, so its key-based check is redone independently:
resolve the tag to the index digest, fetch `<repo>:sha256-<hex>.sig`, read the payload
blob, require `critical.image.docker-manifest-digest` = that digest, and verify the
annotation's ECDSA signature over the payload bytes with openssl and the public key from
`GET /oci/cosign/signing-key.pub`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.factory.live import LiveFactory

pytestmark = pytest.mark.integration

SCHEMATIC = b"customization:\n  systemExtensions:\n    officialExtensions: [factory/hello]\n"
SKOPEO_TIMEOUT = 900


def _skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=SKOPEO_TIMEOUT,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def _ref(live: LiveFactory, image: str, sid: str, tag: str) -> str:
    return f"docker://127.0.0.1:{live.port}/{image}/{sid}:{tag}"


def _request(live: LiveFactory, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One raw request: the path goes out byte for byte (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=SKOPEO_TIMEOUT)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _oci_error(live: LiveFactory, path: str) -> dict[str, Any]:
    status, headers, body = _request(live, "GET", path)
    assert 400 <= status < 500, (status, body)
    assert headers["Content-Type"] == "application/json"
    (error,) = json.loads(body)["errors"]
    found: dict[str, Any] = {"status": status, **error}
    return found


@pytest.fixture(scope="module")
def sid(live_factory: LiveFactory) -> str:
    return live_factory.create_schematic(SCHEMATIC)


def _layers(oci_dir: Path) -> list[dict[str, bytes]]:
    """The files of each layer (bottom first) of the one image in an OCI layout."""
    index = json.loads((oci_dir / "index.json").read_text())
    (entry,) = index["manifests"]
    blobs = oci_dir / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].removeprefix("sha256:")).read_bytes())
    layers = []
    for layer in manifest["layers"]:
        data = (blobs / layer["digest"].removeprefix("sha256:")).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar.getmembers():
                reader = tar.extractfile(member)
                if reader is not None:
                    files[member.name] = reader.read()
        layers.append(files)
    return layers


def test_skopeo_copies_the_installer(live_factory: LiveFactory, sid: str, tmp_path: Path) -> None:
    dest = tmp_path / "oci"
    _ok(
        _skopeo(
            "copy",
            "--src-tls-verify=false",
            _ref(live_factory, "installer", sid, "v1.0.0"),
            f"oci:{dest}:v1.0.0",
        )
    )

    base, files = _layers(dest)
    # The reference release's installer base, then the assets layer (as Talos composes them).
    assert base["usr/bin/installer"].startswith(b"#!/usr/bin/busybox sh\n")
    assert "usr/bin/busybox" in base
    assert "usr/lib/installer/disk.map" in base
    assert sorted(files) == [
        "usr/install/amd64/cmdline",
        "usr/install/amd64/initramfs.xz",
        "usr/install/amd64/vmlinuz",
    ]
    # The same bytes the download routes serve for this schematic.
    assert files["usr/install/amd64/cmdline"] == live_factory.get(
        f"/image/{sid}/v1.0.0/cmdline-metal-amd64"
    )
    assert files["usr/install/amd64/vmlinuz"] == live_factory.get(
        f"/image/{sid}/v1.0.0/kernel-amd64"
    )
    assert files["usr/install/amd64/initramfs.xz"] == live_factory.get(
        f"/image/{sid}/v1.0.0/initramfs-amd64.xz"
    )


def test_skopeo_copies_the_secureboot_installer(
    live_factory: LiveFactory, sid: str, tmp_path: Path
) -> None:
    dest = tmp_path / "oci"
    ref = _ref(live_factory, "installer-secureboot", sid, "1.0.0")
    _ok(_skopeo("copy", "--src-tls-verify=false", ref, f"oci:{dest}:sb"))

    base, files = _layers(dest)
    assert "usr/bin/installer" in base
    assert sorted(files) == ["usr/install/amd64/systemd-boot.efi", "usr/install/amd64/vmlinuz.efi"]
    assert all(data.startswith(b"MZ") for data in files.values())


def test_skopeo_inspects_latest(live_factory: LiveFactory, sid: str) -> None:
    ref = _ref(live_factory, "metal-installer", sid, "latest")
    info = json.loads(_ok(_skopeo("inspect", "--tls-verify=false", ref)))
    raw = _ok(_skopeo("inspect", "--raw", "--tls-verify=false", ref)).encode()

    assert (info["Architecture"], info["Os"]) == ("amd64", "linux")
    # The installer base layer, then the assets layer; the base's entrypoint is kept.
    assert len(info["Layers"]) == 2
    config = json.loads(_ok(_skopeo("inspect", "--config", "--tls-verify=false", ref)))
    assert config["config"]["Entrypoint"] == ["/usr/bin/installer"]
    assert len(config["rootfs"]["diff_ids"]) == 2
    assert info["Name"] == f"127.0.0.1:{live_factory.port}/metal-installer/{sid}"
    assert "v1.0.0" in info["RepoTags"]
    assert "latest" in info["RepoTags"]
    index = json.loads(raw)
    assert info["Digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"] for m in index["manifests"]] == [{"architecture": "amd64", "os": "linux"}]
    # `latest` is v1.0.0 here, and every installer name of one schematic holds the same index.
    for image, tag in (("metal-installer", "v1.0.0"), ("installer", "v1.0.0")):
        ref = _ref(live_factory, image, sid, tag)
        assert _ok(_skopeo("inspect", "--raw", "--tls-verify=false", ref)).encode() == raw


def _public_key(live: LiveFactory, dest: Path) -> Path:
    """The key users verify with: `GET /oci/cosign/signing-key.pub`."""
    dest.write_bytes(live.get("/oci/cosign/signing-key.pub"))
    return dest


def _openssl_verify(work: Path) -> subprocess.CompletedProcess[str]:
    """openssl's check of `work/sig.der` over `work/payload` with `work/key.pub`."""
    argv = ["openssl", "dgst", "-sha256", "-verify", str(work / "key.pub")]
    argv += ["-signature", str(work / "sig.der"), str(work / "payload")]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _verify_like_cosign(
    live: LiveFactory, image: str, sid: str, tag: str, tmp_path: Path
) -> dict[str, Any]:
    """cosign verify --key … --insecure-ignore-tlog, step by step; returns the payload."""
    raw = _ok(_skopeo("inspect", "--raw", "--tls-verify=false", _ref(live, image, sid, tag)))
    digest = "sha256:" + hashlib.sha256(raw.encode()).hexdigest()
    sig_tag = digest.replace(":", "-") + ".sig"
    signature = json.loads(
        _ok(_skopeo("inspect", "--raw", "--tls-verify=false", _ref(live, image, sid, sig_tag)))
    )
    (layer,) = signature["layers"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    status, _, payload = _request(live, "GET", f"/v2/{image}/{sid}/blobs/{layer['digest']}")
    assert status == 200
    assert "sha256:" + hashlib.sha256(payload).hexdigest() == layer["digest"]
    claims: dict[str, Any] = json.loads(payload)
    assert claims["critical"]["type"] == "cosign container image signature"
    assert claims["critical"]["image"]["docker-manifest-digest"] == digest

    (tmp_path / "payload").write_bytes(payload)
    der = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    (tmp_path / "sig.der").write_bytes(der)
    _public_key(live, tmp_path / "key.pub")
    verified = _openssl_verify(tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == "Verified OK"

    # The same signature is discoverable as an OCI 1.1 referrer of the index.
    status, headers, body = _request(live, "GET", f"/v2/{image}/{sid}/referrers/{digest}")
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    sig_digest = (
        "sha256:"
        + hashlib.sha256(
            _ok(
                _skopeo("inspect", "--raw", "--tls-verify=false", _ref(live, image, sid, sig_tag))
            ).encode()
        ).hexdigest()
    )
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [sig_digest]
    return claims


def test_the_index_signature_verifies_like_cosign(
    live_factory: LiveFactory, sid: str, tmp_path: Path
) -> None:
    claims = _verify_like_cosign(live_factory, "metal-installer", sid, "v1.0.0", tmp_path)
    reference = claims["critical"]["identity"]["docker-reference"]
    assert reference == f"127.0.0.1:{live_factory.port}/metal-installer/{sid}"


def test_a_tampered_payload_does_not_verify(
    live_factory: LiveFactory, sid: str, tmp_path: Path
) -> None:
    _verify_like_cosign(live_factory, "installer", sid, "v1.0.0", tmp_path)
    payload = (tmp_path / "payload").read_bytes()
    (tmp_path / "payload").write_bytes(payload.replace(b"sha256:", b"sha256:0", 1))
    assert _openssl_verify(tmp_path).returncode != 0


def test_skopeo_reports_unknown_schematics_and_tags(live_factory: LiveFactory, sid: str) -> None:
    unknown = _skopeo(
        "inspect", "--tls-verify=false", _ref(live_factory, "installer", "0" * 64, "v1.0.0")
    )
    assert unknown.returncode != 0
    assert "name unknown" in unknown.stderr.lower()
    ref = _ref(live_factory, "installer", sid, "v9.9.9")
    missing = _skopeo("inspect", "--tls-verify=false", ref)
    assert missing.returncode != 0
    assert "manifest unknown" in missing.stderr.lower()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v2/installer/{zero}/manifests/v1.0.0", 404, "NAME_UNKNOWN"),
        ("/v2/installer/{sid}/manifests/v9.9.9", 404, "MANIFEST_UNKNOWN"),
        ("/v2/installer/{sid}/blobs/sha256:{zero}", 404, "BLOB_UNKNOWN"),
        ("/v2/installer/{sid}/blobs/sha256:XYZ", 400, "DIGEST_INVALID"),
        ("/v2/installer/{sid}/manifests/sha256:../../etc/passwd", 404, "NAME_UNKNOWN"),
        ("/v2/installer/../manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/installer/%2e%2e/manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/installer/{sid}/manifests/" + "a" * 3000, 400, "TAG_INVALID"),
        ("/v2/" + "b" * 3000 + "/{sid}/manifests/v1.0.0", 400, "NAME_INVALID"),
        ("/v2/nope/{sid}/tags/list", 404, "NAME_UNKNOWN"),
    ],
)
def test_errors_reach_clients_as_oci_json(
    live_factory: LiveFactory, sid: str, path: str, status: int, code: str
) -> None:
    error = _oci_error(live_factory, path.format(sid=sid, zero="0" * 64))
    assert (error["status"], error["code"]) == (status, code)


def test_overlong_request_lines_are_refused(live_factory: LiveFactory, sid: str) -> None:
    status, _, _ = _request(live_factory, "GET", f"/v2/installer/{sid}/manifests/" + "a" * 9000)
    assert 400 <= status < 500


def test_pushes_are_refused(live_factory: LiveFactory, sid: str) -> None:
    status, headers, body = _request(live_factory, "POST", f"/v2/installer/{sid}/blobs/uploads/")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
