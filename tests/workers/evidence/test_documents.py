"""SBOM and provenance of real builds of every kind: valid SPDX 2.3 (spdx-tools validator)
describing the asset; every file the extensions put in the system extension image, unpacked
with unsquashfs, listed with its digest; the DSSE signature checked by openssl; tampering
refused by `image-factory verify`."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli import main
from tests.workers.assets import TEST_SIGNING_KEY, build_assets, stock_store, the_schematic
from tests.workers.evidence.dsse import openssl_verified_statement
from workers.assembly.run import run_tool
from workers.evidence.sbom import asset_sha256, check_sbom
from workers.keys.signing import checksum_line
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

KINDS = [
    "kernel-amd64",
    "cmdline-metal-amd64",
    "initramfs-amd64.xz",
    "metal-amd64.iso",
    "metal-amd64.raw.xz",
    "metal-amd64-uki.efi",
    "installer-amd64.tar",
    "extensions-amd64.sqsh",
]
WITH_EXTENSIONS = [k for k in KINDS if not k.startswith(("kernel", "cmdline"))]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evidence")
    store, settings = stock_store(reference_release, root)
    return build_assets(store, settings, KINDS, root / "out")


def _sbom(asset: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads(
        asset.with_name(asset.name + ".spdx.json").read_bytes()
    )
    return document


@pytest.mark.parametrize("path", KINDS)
def test_sbom_is_valid_spdx_describing_the_asset(path: str, built: dict[str, Path]) -> None:
    asset = built[path]
    document = check_sbom(asset.with_name(asset.name + ".spdx.json").read_bytes())
    assert asset_sha256(document) == _sha256(asset)
    assert document.creation_info.spdx_version == "SPDX-2.3"
    names = {p.name: p for p in document.packages}
    assert "release v1.0.0" in names
    if path in WITH_EXTENSIONS:
        assert {"factory/hello", "factory/dummy-module", "schematic"} <= set(names)
        _schematic, sid = the_schematic()
        assert names["schematic"].version == sid
        assert "factory/hello" in (names["schematic"].description or "")
        hello = names["factory/hello"]
        assert "origin: bundled" in (hello.comment or "")
        assert "kernel-modules" in names  # the schematic asks for zram
        # The reference OS records the Debian packages its release was built from.
        assert any(
            ref.locator.startswith("pkg:deb/debian/linux-image-")
            for p in document.packages
            for ref in p.external_references
        )
    if path == "kernel-amd64":
        assert "vmlinuz" in names


def test_every_extension_file_in_the_image_is_in_the_sbom(
    built: dict[str, Path], tmp_path: Path
) -> None:
    image = built["extensions-amd64.sqsh"]
    root = tmp_path / "unpacked"
    run_tool(["unsquashfs", "-no-progress", "-d", root, image])
    document = check_sbom(image.with_name(image.name + ".spdx.json").read_bytes())
    listed = {
        f.name.removeprefix("."): next(c.value for c in f.checksums if c.algorithm.name == "SHA256")
        for f in document.files
    }
    extension_files = [
        f.name.removeprefix(".")
        for f in document.files
        if f.spdx_id.startswith("SPDXRef-Extension-")
    ]
    assert "/usr/local/bin/hello" in extension_files or any(
        "hello" in name for name in extension_files
    )
    for name in extension_files:
        assert _sha256(root / name.lstrip("/")) == listed[name], name
    # And the other way round: every regular file in the image is listed with its digest,
    # except what the factory generates (extension-release, the merged module index).
    for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        name = "/" + str(file.relative_to(root))
        if "/extension-release.d/" in name or name.rsplit("/", 1)[1].startswith("modules."):
            continue
        if name.endswith("/modules-load.d/schematic.conf"):
            continue
        assert listed.get(name) == _sha256(file), name


def test_provenance_signature_verifies_with_openssl(built: dict[str, Path], tmp_path: Path) -> None:
    asset = built["metal-amd64.iso"]
    envelope = asset.with_name(asset.name + ".intoto.jsonl").read_bytes()
    statement = openssl_verified_statement(envelope, TEST_SIGNING_KEY.public_key_pem, tmp_path)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"][0]["digest"]["sha256"] == _sha256(asset)
    sbom = asset.with_name(asset.name + ".spdx.json").read_bytes()
    byproducts = statement["predicate"]["runDetails"]["byproducts"]
    assert byproducts[0]["digest"]["sha256"] == hashlib.sha256(sbom).hexdigest()
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert any(d["name"] == "extension factory/hello" for d in dependencies)


def _local_documents(asset: Path, dest: Path) -> Path:
    """The asset and everything `verify` reads beside it, copied into `dest`."""
    dest.mkdir()
    copy = dest / asset.name
    copy.write_bytes(asset.read_bytes())
    sha256 = _sha256(asset)
    (dest / f"{asset.name}.sha256").write_text(checksum_line(sha256, asset.name))
    bundle = json.dumps(TEST_SIGNING_KEY.sigstore_bundle(sha256))
    (dest / f"{asset.name}.sigstore.json").write_text(bundle)
    for suffix in (".spdx.json", ".intoto.jsonl"):
        (dest / (asset.name + suffix)).write_bytes(
            asset.with_name(asset.name + suffix).read_bytes()
        )
    (dest / "key.pub").write_bytes(TEST_SIGNING_KEY.public_key_pem)
    return copy


def _verify(copy: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", str(copy), "--key", str(copy.parent / "key.pub")])
    return result.exit_code, result.output


def test_verify_accepts_the_untouched_documents(built: dict[str, Path], tmp_path: Path) -> None:
    code, output = _verify(_local_documents(built["initramfs-amd64.xz"], tmp_path / "d"))
    assert code == 0, output
    assert "ok  signature: Sigstore bundle signature verified" in output
    assert "ok  provenance: DSSE signature verified" in output
    assert "ok  SBOM: valid SPDX 2.3" in output


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_verify_refuses_a_tampered_asset(built: dict[str, Path], tmp_path: Path) -> None:
    copy = _local_documents(built["initramfs-amd64.xz"], tmp_path / "d")
    _flip_last_byte(copy)
    code, output = _verify(copy)
    assert code != 0
    assert "checksum: the file's sha256 is" in output


def test_verify_refuses_a_tampered_sbom(built: dict[str, Path], tmp_path: Path) -> None:
    copy = _local_documents(built["initramfs-amd64.xz"], tmp_path / "d")
    sbom = copy.with_name(copy.name + ".spdx.json")
    sbom.write_text(sbom.read_text().replace("factory/hello", "factory/hellp"))
    code, output = _verify(copy)
    assert code != 0
    assert "SBOM: its sha256" in output
    assert "the SBOM was altered" in output


def test_verify_refuses_a_tampered_provenance(built: dict[str, Path], tmp_path: Path) -> None:
    copy = _local_documents(built["initramfs-amd64.xz"], tmp_path / "d")
    provenance = copy.with_name(copy.name + ".intoto.jsonl")
    envelope = json.loads(provenance.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["version"] = "v9.9.9"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    provenance.write_text(json.dumps(envelope))
    code, output = _verify(copy)
    assert code != 0
    assert "provenance: the provenance's signature does not verify" in output
