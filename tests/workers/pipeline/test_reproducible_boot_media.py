"""Same inputs, same bytes, for the UKI, SecureBoot, bootloader-variant, overlay, vhd/ova,
installer and sysext kinds, and for their SBOMs and signed provenance: each built twice in
two separate stores (no shared layer cache), the second time in another directory, time
zone, umask and on a single CPU.

SecureBoot assets are reproducible too, as long as the key stays the same: sbsign's
Authenticode and our PKCS#7 for the `.auth` files are RSA PKCS#1 v1.5 signatures without a
signing time, and both builds are given the same configured key. (With a different key the
bytes differ, as they must.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.workers.assets import SCHEMATIC, build_assets, stock_store
from workers.evidence.stored import PROVENANCE_SUFFIX, SBOM_SUFFIX
from workers.keys.secureboot_key import generate_secureboot_pair
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

OVERLAY = SCHEMATIC + b"overlay:\n  image: factory/testboard\n  name: testboard\n"
BUILDS: dict[str, tuple[bytes, list[str]]] = {
    "plain": (
        SCHEMATIC,
        [
            "metal-amd64-uki.efi",
            "metal-amd64-secureboot-uki.efi",
            "metal-amd64-secureboot.iso",
            "metal-amd64-secureboot.raw",
            "azure-amd64.vhd",
            "vmware-amd64.ova",
            "installer-amd64.tar",
            "installer-amd64-secureboot.tar",
            "extensions-amd64.sqsh",
        ],
    ),
    "sd-boot": (SCHEMATIC + b"  bootloader: sd-boot\n", ["metal-amd64.iso"]),
    "dual-boot-4k": (
        SCHEMATIC + b"  bootloader: dual-boot\n  diskImage:\n    sectorSize: 4096\n",
        ["metal-amd64.iso", "metal-amd64.raw"],
    ),
    "overlay": (OVERLAY, ["metal-amd64.raw"]),
}
# Each asset, its SBOM and its signed provenance.
CASES = [
    (name, path + suffix)
    for name, (_, paths) in BUILDS.items()
    for path in paths
    for suffix in ("", SBOM_SUFFIX, PROVENANCE_SUFFIX)
]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sb-key")
    key_pem, cert_pem = generate_secureboot_pair()
    (root / "key.pem").write_bytes(key_pem)
    (root / "cert.pem").write_bytes(cert_pem)
    return root / "key.pem", root / "cert.pem"


def _build_all(
    reference: tuple[LocalStore, Release], root: Path, key: tuple[Path, Path]
) -> dict[tuple[str, str], str]:
    store, settings = stock_store(reference, root)
    settings = dataclasses.replace(
        settings, secureboot_key=str(key[0]), secureboot_cert=str(key[1])
    )
    digests = {}
    for name, (text, paths) in BUILDS.items():
        built = build_assets(store, settings, paths, root / "out" / name, text)
        for path, file in built.items():
            for suffix in ("", SBOM_SUFFIX, PROVENANCE_SUFFIX):
                document = file.with_name(file.name + suffix)
                digests[(name, path + suffix)] = _sha256(document)
                document.unlink()
    return digests


@contextmanager
def _elsewhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Another time zone, umask and a single CPU, for this process and every tool it runs."""
    affinity = os.sched_getaffinity(0)
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    os.sched_setaffinity(0, {min(affinity)})
    old_umask = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old_umask)
        os.sched_setaffinity(0, affinity)
        monkeypatch.delenv("TZ")


@pytest.fixture(scope="module")
def both_builds(
    reference_release: tuple[LocalStore, Release],
    tmp_path_factory: pytest.TempPathFactory,
    key_pair: tuple[Path, Path],
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]]:
    first = _build_all(reference_release, tmp_path_factory.mktemp("first"), key_pair)
    with pytest.MonkeyPatch.context() as monkeypatch, _elsewhere(monkeypatch):
        second = _build_all(
            reference_release, tmp_path_factory.mktemp("second-elsewhere"), key_pair
        )
    return first, second


@pytest.mark.parametrize(("schematic", "path"), CASES)
def test_byte_identical(
    schematic: str,
    path: str,
    both_builds: tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]],
) -> None:
    first, second = both_builds
    assert first[(schematic, path)] == second[(schematic, path)]
