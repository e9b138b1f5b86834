"""Publishing a release tag: OCI index over the built arches, signature, records, tag last."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from schematics import Schematic, parse_schematic
from tests.workers.releases.fakes import save_fake_release
from workers.backends import choose_backend
from workers.dispatch.coordination import make_coordination
from workers.keys.signing import key_path
from workers.outputs.schematics_store import save_schematic
from workers.registry import content, oci
from workers.registry.errors import (
    BuildRefused,
    NameUnknown,
    RegistryUnavailable,
)
from workers.registry.names import Repository, parse_repository, signature_tag
from workers.registry.publish import (
    docker_reference,
    ensure_published,
    load_repository_schematic,
    publish_lease,
)
from workers.registry.tags import available_versions
from workers.releases.stored import blob_key
from workers.settings import Settings
from workers.store import LocalStore

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0]\n"


def _setup(root: Path) -> tuple[LocalStore, Settings, Repository, Schematic]:
    settings = Settings(data_dir=root / "data", external_url="https://factory.example:8443")
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", root / "releases")
    schematic = parse_schematic(SCHEMATIC)
    repo = parse_repository("metal-installer", save_schematic(store, schematic))
    return store, settings, repo, schematic


def _ensure_published(
    store: LocalStore, settings: Settings, repo: Repository, schematic: Schematic, version: str
) -> content.TagRecord:
    """`ensure_published`, single flight through the coordination of the settings' backend."""
    coordination = make_coordination(choose_backend(settings))
    return ensure_published(store, settings, coordination, repo, schematic, version)


def _publish(root: Path) -> tuple[LocalStore, Settings, Repository, content.TagRecord]:
    store, settings, repo, schematic = _setup(root)
    return store, settings, repo, _ensure_published(store, settings, repo, schematic, "v1.0.0")


def test_index_covers_the_built_arch_and_is_signed(tmp_path: Path) -> None:
    store, settings, repo, record = _publish(tmp_path)

    index_bytes = content.read_verified(store, record.descriptor)
    assert index_bytes is not None
    index = json.loads(index_bytes)
    assert index["mediaType"] == record.descriptor.media_type == oci.INDEX
    (entry,) = index["manifests"]
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}
    image = content.manifest_descriptor(store, repo, entry["digest"].removeprefix("sha256:"))
    assert image is not None
    assert image.media_type == oci.MANIFEST
    manifest = json.loads(store.get_bytes(blob_key(image.hex)))
    for blob in (manifest["config"], *manifest["layers"]):
        found = content.blob_descriptor(store, repo, blob["digest"].removeprefix("sha256:"))
        assert found is not None
        assert found.size == blob["size"]
    signature = content.read_tag(store, repo, signature_tag(record.descriptor.hex))
    assert signature is not None
    (referrer,) = content.referrers(store, repo, record.descriptor.hex)
    assert referrer.digest == signature.descriptor.digest
    sig_manifest = json.loads(store.get_bytes(blob_key(signature.descriptor.hex)))
    payload = store.get_bytes(blob_key(sig_manifest["layers"][0]["digest"].removeprefix("sha256:")))
    critical = json.loads(payload)["critical"]
    assert critical["image"]["docker-manifest-digest"] == record.descriptor.digest
    assert critical["identity"]["docker-reference"] == f"factory.example:8443/{repo.name}"
    assert docker_reference(settings, repo) == f"factory.example:8443/{repo.name}"


def test_same_schematic_and_version_give_the_same_digests(tmp_path: Path) -> None:
    """Two independent factories (other data dirs, other signing keys) agree on the index."""
    store_a, _, repo_a, one = _publish(tmp_path / "a")
    store_b, _, repo_b, other = _publish(tmp_path / "b")

    assert one.descriptor == other.descriptor
    assert store_a.get_bytes(blob_key(one.descriptor.hex)) == store_b.get_bytes(
        blob_key(other.descriptor.hex)
    )
    # Different keys: same payload, different signatures.
    sig_a = content.read_tag(store_a, repo_a, signature_tag(one.descriptor.hex))
    sig_b = content.read_tag(store_b, repo_b, signature_tag(other.descriptor.hex))
    assert sig_a is not None
    assert sig_b is not None
    assert sig_a.descriptor != sig_b.descriptor


def test_same_key_gives_the_same_signature(tmp_path: Path) -> None:
    store_a, settings_a, repo_a, one = _publish(tmp_path / "a")
    store_b, settings_b, repo_b, schematic = _setup(tmp_path / "b")
    key_path(settings_b).parent.mkdir(parents=True)
    shutil.copy(key_path(settings_a), key_path(settings_b))

    other = _ensure_published(store_b, settings_b, repo_b, schematic, "v1.0.0")

    tag = signature_tag(one.descriptor.hex)
    assert content.read_tag(store_a, repo_a, tag) == content.read_tag(store_b, repo_b, tag)
    assert other.descriptor == one.descriptor


def test_second_pull_reuses_the_published_tag(tmp_path: Path) -> None:
    store, settings, repo, schematic = _setup(tmp_path)
    first = _ensure_published(store, settings, repo, schematic, "v1.0.0")
    tag_file = store.path(f"{repo.store_prefix}tags/v1.0.0")
    written = tag_file.stat().st_mtime_ns, tag_file.stat().st_ino

    second = _ensure_published(store, settings, repo, schematic, "v1.0.0")

    assert second == first
    assert (tag_file.stat().st_mtime_ns, tag_file.stat().st_ino) == written


def test_a_missing_layer_blob_is_published_again(tmp_path: Path) -> None:
    store, settings, repo, schematic = _setup(tmp_path)
    first = _ensure_published(store, settings, repo, schematic, "v1.0.0")
    index = json.loads(store.get_bytes(blob_key(first.descriptor.hex)))
    image = json.loads(
        store.get_bytes(blob_key(index["manifests"][0]["digest"].removeprefix("sha256:")))
    )
    layer_key = blob_key(image["layers"][0]["digest"].removeprefix("sha256:"))
    store.delete(layer_key)

    again = _ensure_published(store, settings, repo, schematic, "v1.0.0")

    assert again.descriptor == first.descriptor
    assert store.exists(layer_key)


def test_damaged_index_is_published_again(tmp_path: Path) -> None:
    store, settings, repo, schematic = _setup(tmp_path)
    first = _ensure_published(store, settings, repo, schematic, "v1.0.0")
    store.put_bytes(blob_key(first.descriptor.hex), b"{}")

    again = _ensure_published(store, settings, repo, schematic, "v1.0.0")

    assert again.descriptor == first.descriptor
    assert content.read_verified(store, again.descriptor) is not None


def test_a_new_signing_key_replaces_the_signature(tmp_path: Path) -> None:
    store, settings, repo, schematic = _setup(tmp_path)
    first = _ensure_published(store, settings, repo, schematic, "v1.0.0")
    old = content.read_tag(store, repo, signature_tag(first.descriptor.hex))
    key_path(settings).unlink()

    again = _ensure_published(store, settings, repo, schematic, "v1.0.0")

    new = content.read_tag(store, repo, signature_tag(again.descriptor.hex))
    assert again.descriptor == first.descriptor
    assert old is not None
    assert new is not None
    assert new.descriptor != old.descriptor
    assert content.referrers(store, repo, again.descriptor.hex) == [new.descriptor]


def test_a_pull_waits_for_the_publisher_of_the_same_tag(tmp_path: Path) -> None:
    """While another process holds the tag's lease, a pull waits for it (up to
    IMAGE_FACTORY_BUILD_WAIT, zero here: 503) and publishes nothing itself."""
    store, settings, repo, schematic = _setup(tmp_path)
    settings = replace(settings, build_wait=0)
    lease = make_coordination(choose_backend(settings)).lease(publish_lease(repo, "v1.0.0"))
    assert lease is not None
    try:
        with pytest.raises(RegistryUnavailable) as caught:
            _ensure_published(store, settings, repo, schematic, "v1.0.0")
        assert caught.value.status == 503
        assert not content.stored_tags(store, repo)
    finally:
        lease.release()

    assert _ensure_published(store, settings, repo, schematic, "v1.0.0").descriptor.digest


def test_every_arch_with_a_release_is_indexed(tmp_path: Path) -> None:
    store, settings, repo, schematic = _setup(tmp_path)
    save_fake_release(store, "v1.0.0", tmp_path / "releases", arch="arm64")
    save_fake_release(store, "v2.0.0", tmp_path / "releases", arch="arm64")

    record = _ensure_published(store, settings, repo, schematic, "v1.0.0")
    index = json.loads(store.get_bytes(blob_key(record.descriptor.hex)))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert available_versions(store) == ["v1.0.0", "v2.0.0"]
    # A release of one arch gives an index of that arch alone.
    record = _ensure_published(store, settings, repo, schematic, "v2.0.0")
    index = json.loads(store.get_bytes(blob_key(record.descriptor.hex)))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]


def test_unknown_schematic_is_name_unknown(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(NameUnknown, match="not found"):
        load_repository_schematic(store, parse_repository("installer", "0" * 64))


def test_schematic_the_release_cannot_build_is_refused(tmp_path: Path) -> None:
    store, settings, _, _ = _setup(tmp_path)
    schematic = parse_schematic(
        b"customization:\n  systemExtensions:\n    officialExtensions: [factory/absent]\n"
    )
    repo = parse_repository("installer", save_schematic(store, schematic))

    with pytest.raises(BuildRefused, match="factory/absent") as caught:
        _ensure_published(store, settings, repo, schematic, "v1.0.0")
    assert caught.value.status == 400
    assert not content.stored_tags(store, repo)
