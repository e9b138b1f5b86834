"""Air gap end to end (upstream issue #310): assets built in data directory A, exported with
`image-factory export`, loaded into a fresh data directory B with `image-factory import-bundle`
(B has keys of its own and no build worker), then served by B: the same IDs, the same sha256
for every asset, signatures that verify with the public key the bundle carries."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from factory import create_app
from factory.cli import main
from schematics import parse_schematic
from tests.workers.releases.fakes import (
    fake_files,
    fake_manifest,
    save_fake_release,
    save_release_with_base,
)
from workers.airgap.layout import INDEX_NAME, OBJECTS_DIR, SIGNING_KEY_NAME
from workers.keys.signing import load_or_create_signing_key
from workers.outputs.schematics_store import save_schematic
from workers.releases.clients import import_clients
from workers.releases.stored import save_release
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration

ASSETS = ("kernel-amd64", "initramfs-amd64.xz", "cmdline-metal-amd64", "extensions-amd64.sqsh")
SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0, air=gap]\n"
CLIENT = "talosctl-linux-amd64"
OTHER = b"customization:\n  extraKernelArgs: [not=exported]\n"


def _run(data_dir: Path, *args: str) -> str:
    env = {"IMAGE_FACTORY_DATA_DIR": str(data_dir)}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str]:
    """(data dir A, bundle, schematic ID, the ID of a schematic not exported)."""
    root = tmp_path_factory.mktemp("airgap")
    side_a = root / "a"
    store = LocalStore(side_a / "store")
    save_fake_release(store, "v1.0.0", root / "releases")
    sid = save_schematic(store, parse_schematic(SCHEMATIC))
    clients = root / "clients"
    clients.mkdir()
    (clients / CLIENT).write_bytes(b"\x7fELF the client")
    import_clients(store, "v1.0.0", clients, load_or_create_signing_key(Settings(data_dir=side_a)))
    other = save_schematic(store, parse_schematic(OTHER))
    bundle = root / "bundle.tar"
    asset_args = [arg for path in ASSETS for arg in ("--asset", path)]
    _run(side_a, "export", str(bundle), "--schematic", sid, *asset_args)
    return side_a, bundle, sid, other


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_the_other_side_serves_the_same_bytes_signed_by_the_exporter(
    exported: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    side_a, bundle, sid, other = exported
    side_b = tmp_path / "b"
    printed = _run(side_b, "import-bundle", str(bundle))
    assert all(path in printed for path in ASSETS)

    settings_a = Settings(data_dir=side_a)
    app_a = create_app(settings_a, store=LocalStore(side_a / "store")).test_client()
    # No worker on side B and a short wait: anything B would have to build fails the test.
    settings_b = Settings(data_dir=side_b, build_wait=2)
    app_b = create_app(settings_b, store=LocalStore(side_b / "store")).test_client()

    exporter_key = serialization.load_pem_public_key(_members(bundle)[SIGNING_KEY_NAME])
    assert isinstance(exporter_key, ec.EllipticCurvePublicKey)
    assert (
        app_b.get("/oci/cosign/signing-key.pub").data
        != app_a.get("/oci/cosign/signing-key.pub").data
    ), "side B should have keys of its own"

    assert app_b.get("/versions").get_json() == app_a.get("/versions").get_json()
    assert app_b.get(f"/schematics/{sid}").data == app_a.get(f"/schematics/{sid}").data
    assert app_b.get(f"/schematics/{other}").status_code == 404
    assert app_b.get("/talosctl/v1.0.0").get_json() == app_a.get("/talosctl/v1.0.0").get_json()
    urls = [f"/image/{sid}/v1.0.0/{path}" for path in ASSETS] + [f"/talosctl/v1.0.0/{CLIENT}"]
    for url in urls:
        there, here = app_a.get(url), app_b.get(url)
        assert (there.status_code, here.status_code) == (200, 200), url
        assert hashlib.sha256(here.data).hexdigest() == hashlib.sha256(there.data).hexdigest()
        checksum = app_b.get(url + ".sha256").data.decode().split()[0]
        assert checksum == hashlib.sha256(here.data).hexdigest()
        signed = app_b.get(url + ".sigstore.json").get_json()["messageSignature"]
        digest = base64.b64decode(signed["messageDigest"]["digest"])
        assert digest == hashlib.sha256(here.data).digest()
        signature = base64.b64decode(signed["signature"])
        exporter_key.verify(signature, here.data, ec.ECDSA(hashes.SHA256()))
        if url.startswith("/image/"):  # the SBOM and signed provenance cross the gap too
            for suffix in (".spdx.json", ".intoto.jsonl"):
                there, here = app_a.get(url + suffix), app_b.get(url + suffix)
                assert (there.status_code, here.status_code) == (200, 200), url + suffix
                assert here.data == there.data, url + suffix


def test_the_installer_base_crosses_the_gap(tmp_path: Path) -> None:
    """The bundle carries each release's installer base (config and layers), so side B's
    registry proxy serves `siderolabs/installer-base` with the same bytes as side A's."""
    side_a, side_b = tmp_path / "a", tmp_path / "b"
    store_a = LocalStore(side_a / "store")
    release = save_release_with_base(store_a, tmp_path / "release", "v1.0.0", "amd64")
    assert release.installer_base is not None
    sid = save_schematic(store_a, parse_schematic(SCHEMATIC))
    bundle = tmp_path / "bundle.tar"
    _run(side_a, "export", str(bundle), "--schematic", sid)
    members = _members(bundle)
    base = release.installer_base
    for entry in (base.config, *base.layers):
        blob = members[f"{OBJECTS_DIR}blobs/sha256/{entry.sha256}"]
        assert hashlib.sha256(blob).hexdigest() == entry.sha256

    _run(side_b, "import-bundle", str(bundle))
    app_a = create_app(Settings(data_dir=side_a), store=store_a).test_client()
    store_b = LocalStore(side_b / "store")
    app_b = create_app(Settings(data_dir=side_b), store=store_b).test_client()
    repo = "/v2/siderolabs/installer-base"
    index = app_a.get(f"{repo}/manifests/v1.0.0")
    assert index.status_code == 200
    assert app_b.get(f"{repo}/manifests/v1.0.0").data == index.data
    (platform,) = index.get_json()["manifests"]
    manifest = app_b.get(f"{repo}/manifests/{platform['digest']}")
    assert manifest.data == app_a.get(f"{repo}/manifests/{platform['digest']}").data
    descriptors = manifest.get_json()
    for descriptor in (descriptors["config"], *descriptors["layers"]):
        here = app_b.get(f"{repo}/blobs/{descriptor['digest']}")
        assert here.status_code == 200
        assert "sha256:" + hashlib.sha256(here.data).hexdigest() == descriptor["digest"]


def test_the_bundle_holds_public_halves_only_and_one_selection(
    exported: tuple[Path, Path, str, str],
) -> None:
    _, bundle, sid, other = exported
    members = _members(bundle)
    assert next(iter(members)) == INDEX_NAME
    assert not any(b"PRIVATE KEY" in data for data in members.values())
    assert not any(other in name for name in members)
    index = json.loads(members[INDEX_NAME])
    assert index["schematics"] == [sid]
    assert sorted(a["path"] for a in index["assets"]) == sorted(ASSETS)
    for key, entry in index["objects"].items():
        assert hashlib.sha256(members[OBJECTS_DIR + key]).hexdigest() == entry["sha256"]


def test_exporting_again_gives_the_same_bytes(
    exported: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    side_a, bundle, sid, _ = exported
    again = tmp_path / "again.tar"
    asset_args = [arg for path in ASSETS for arg in ("--asset", path)]
    _run(side_a, "export", str(again), "--schematic", sid, *asset_args)
    assert again.read_bytes() == bundle.read_bytes()


def _rewritten(bundle: Path, dest: Path, change: dict[str, bytes]) -> Path:
    with tarfile.open(bundle) as src, tarfile.open(dest, "w") as out:
        for member in src.getmembers():
            data = change.get(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def test_a_tampered_bundle_loads_nothing(
    exported: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    _, bundle, _, _ = exported
    members = _members(bundle)
    blob = next(n for n in members if n.startswith(OBJECTS_DIR + "blobs/"))
    tampered = _rewritten(bundle, tmp_path / "t.tar", {blob: b"x" + members[blob][1:]})
    side_b = tmp_path / "b"
    result = CliRunner().invoke(
        main, ["import-bundle", str(tampered)], env={"IMAGE_FACTORY_DATA_DIR": str(side_b)}
    )
    assert result.exit_code == 1
    assert "sha256" in result.output
    assert blob.removeprefix(OBJECTS_DIR) in result.output
    assert "Traceback" not in result.output
    store = side_b / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))


def test_an_object_held_with_other_bytes_stops_the_import(
    exported: tuple[Path, Path, str, str], tmp_path: Path
) -> None:
    _, bundle, _, _ = exported
    side_b = tmp_path / "b"
    store = LocalStore(side_b / "store")
    files = fake_files(tmp_path / "other-release", salt="other bytes")
    save_release(store, fake_manifest("v1.0.0", files), files)  # same version, other bytes
    before = sorted(store.list(""))
    result = CliRunner().invoke(
        main, ["import-bundle", str(bundle)], env={"IMAGE_FACTORY_DATA_DIR": str(side_b)}
    )
    assert result.exit_code == 1
    assert "already holds releases/v1.0.0/amd64/manifest.json with other bytes" in result.output
    assert sorted(store.list("")) == before


def _tar(dest: Path, members: list[tuple[str, bytes]], link: str = "") -> Path:
    with tarfile.open(dest, "w") as out:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            out.addfile(info)
    return dest


INDEX = json.dumps({"format": 1, "objects": {}, "assets": []}).encode()


@pytest.mark.parametrize(
    ("members", "link", "said"),
    [
        ([], "", "bundle: empty"),
        ([("objects/x", b"")], "", "the first member must be bundle.json"),
        ([(INDEX_NAME, b"{")], "", "bundle.json is not JSON"),
        ([(INDEX_NAME, INDEX), ("objects/../escape", b"")], "", "invalid object name"),
        ([(INDEX_NAME, INDEX), ("objects/unlisted", b"")], "", "object unlisted is not listed"),
        ([(INDEX_NAME, INDEX)], "objects/link", "objects/link is not a regular file"),
        ([(INDEX_NAME, INDEX)], "", f"{SIGNING_KEY_NAME} is missing"),
    ],
)
def test_malformed_bundles_are_refused_saying_why(
    tmp_path: Path, members: list[tuple[str, bytes]], link: str, said: str
) -> None:
    bundle = _tar(tmp_path / "bad.tar", members, link)
    side_b = tmp_path / "b"
    result = CliRunner().invoke(
        main, ["import-bundle", str(bundle)], env={"IMAGE_FACTORY_DATA_DIR": str(side_b)}
    )
    assert result.exit_code == 1
    assert said in result.output
    assert "Traceback" not in result.output
    assert not (side_b / "store").exists() or not any(
        p.is_file() for p in (side_b / "store").rglob("*")
    )


def test_a_file_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    result = CliRunner().invoke(
        main, ["import-bundle", str(junk)], env={"IMAGE_FACTORY_DATA_DIR": str(tmp_path / "b")}
    )
    assert result.exit_code == 1
    assert "bundle: not a readable tar" in result.output
