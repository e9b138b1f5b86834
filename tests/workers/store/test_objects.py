"""The object layer: key schemes, blobs written once, entries committed last and verified."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.workers.releases.fakes import save_fake_release
from workers.outputs.finished_builds import build_manifest_key, load_build
from workers.pipeline.build_once import publish_build
from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.pipeline.progress import StageClock, quiet
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.registry.content import put_document, read_verified, stored_with_size
from workers.registry.oci import Descriptor
from workers.releases.stored import manifest_key
from workers.settings import Settings
from workers.store import LocalStore
from workers.store.objects import Content, Objects, blob_key, content_of_bytes, inputs_key


class RecordingStore(LocalStore):
    """A local store that remembers the order of its writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self.writes.append(key)
        super().put_bytes(key, data, content_type)

    def put_file(self, key: str, src: Path, content_type: str = "application/octet-stream") -> None:
        self.writes.append(key)
        super().put_file(key, src, content_type)

    def adopt_file(
        self, key: str, src: Path, content_type: str = "application/octet-stream"
    ) -> None:
        self.writes.append(key)
        super().adopt_file(key, src, content_type)


@pytest.fixture
def recording(tmp_path: Path) -> RecordingStore:
    return RecordingStore(tmp_path / "recorded")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# Keys: each user's scheme, literally as before the object layer.


def test_blob_and_inputs_keys_are_the_existing_schemes() -> None:
    assert blob_key("ab" * 32) == "blobs/sha256/" + "ab" * 32
    expected = _sha(b'{"digest":"d","recipe":1}')
    assert inputs_key("layers/extension", {"recipe": 1, "digest": "d"}) == (
        f"layers/extension/{expected}"
    )
    assert cache_key("extension", {"digest": "d", "recipe": 1}) == f"layers/extension/{expected}"


def test_entry_keys_of_every_user_are_unchanged() -> None:
    assert build_manifest_key("k123") == "builds/k123/manifest.json"
    assert manifest_key("v1.0.0", "amd64") == "releases/v1.0.0/amd64/manifest.json"


def test_registry_content_lands_under_its_digest(store: LocalStore) -> None:
    data = b'{"schemaVersion":2}'
    descriptor = Descriptor(
        "application/vnd.oci.image.manifest.v1+json", f"sha256:{_sha(data)}", len(data)
    )
    put_document(store, descriptor, data)
    assert list(store.list("blobs/")) == [f"blobs/sha256/{_sha(data)}"]
    assert read_verified(store, descriptor) == data
    assert stored_with_size(store, descriptor)


def test_layer_entry_document_is_byte_identical(store: LocalStore, tmp_path: Path) -> None:
    prefix = "layers/extension/" + "0" * 64
    save_entry(store, prefix, {"layer.sqsh": _file(tmp_path, "a", b"layer")}, {"x": 1})
    assert store.get_bytes(f"{prefix}/entry.json") == (
        b'{\n  "files": {\n    "layer.sqsh": {\n      "sha256": "'
        + _sha(b"layer").encode()
        + b'",\n      "size": 5\n    }\n  },\n  "info": {\n    "x": 1\n  }\n}\n'
    )
    assert store.get_bytes(f"{prefix}/layer.sqsh") == b"layer"


# Commit last: the document is written after every part it names.


def test_commit_writes_the_document_after_every_part(
    recording: RecordingStore, tmp_path: Path
) -> None:
    staged = Objects(recording).new()
    one = staged.add_file("one", _file(tmp_path, "1", b"first"))
    staged.add_bytes("two", b"second")
    staged.commit("things/x/manifest.json", b"{}\n")
    assert recording.writes == [
        blob_key(one.sha256),
        blob_key(_sha(b"second")),
        "things/x/manifest.json",
    ]
    with pytest.raises(RuntimeError, match="already committed"):
        staged.add_bytes("three", b"late")


def test_layer_cache_commits_entry_json_last(recording: RecordingStore, tmp_path: Path) -> None:
    files = {"b.tar": _file(tmp_path, "b", b"bb"), "a.sqsh": _file(tmp_path, "a", b"aa")}
    save_entry(recording, "layers/k/h", files, {})
    assert recording.writes == ["layers/k/h/a.sqsh", "layers/k/h/b.tar", "layers/k/h/entry.json"]


def test_release_manifest_is_written_last(recording: RecordingStore, tmp_path: Path) -> None:
    release = save_fake_release(recording, "v1.0.0", tmp_path)
    assert recording.writes[-1] == "releases/v1.0.0/amd64/manifest.json"
    assert sorted(recording.writes[:-1]) == sorted(
        blob_key(entry.sha256) for entry in release.files.values()
    )


def test_build_manifest_is_written_after_its_blob(
    recording: RecordingStore, settings: Settings, tmp_path: Path
) -> None:
    save_fake_release(recording, "v1.0.0", tmp_path / "release")
    schematic = parse_schematic(b"customization:\n  extraKernelArgs: [quiet]\n")
    plan = make_plan(
        recording,
        schematic,
        schematic_id(schematic),
        "v1.0.0",
        parse_profile("cmdline-metal-amd64"),
        settings,
    )
    asset = _file(tmp_path, "asset", b"the asset")
    recording.writes.clear()
    built = publish_build(recording, plan, asset, time.monotonic(), StageClock(quiet), None)
    assert recording.writes == [blob_key(_sha(b"the asset")), build_manifest_key(plan.key)]
    assert load_build(recording, plan.key) == built


# Reading back: an incomplete or altered entry reads as missing.


def _committed_layer(store: LocalStore, tmp_path: Path) -> str:
    prefix = cache_key("test", {"n": 1})
    files = {"a": _file(tmp_path, "a", b"aaaa"), "b": _file(tmp_path, "b", b"bbbb")}
    save_entry(store, prefix, files, {"ok": True})
    return prefix


def test_entry_with_a_missing_part_reads_as_missing(store: LocalStore, tmp_path: Path) -> None:
    prefix = _committed_layer(store, tmp_path)
    assert load_entry(store, prefix, tmp_path / "whole") is not None
    store.delete(f"{prefix}/b")
    assert load_entry(store, prefix, tmp_path / "missing") is None


def test_entry_with_an_altered_part_reads_as_missing(store: LocalStore, tmp_path: Path) -> None:
    prefix = _committed_layer(store, tmp_path)
    store.put_bytes(f"{prefix}/a", b"AAAA")  # same size, other bytes
    assert load_entry(store, prefix, tmp_path / "altered") is None


def test_uncommitted_parts_are_not_an_entry(store: LocalStore, tmp_path: Path) -> None:
    staged = Objects(store).new("layers/x/y")
    staged.add_bytes("a", b"staged but never committed")
    assert Objects(store).document("layers/x/y/entry.json") is None
    assert load_entry(store, "layers/x/y", tmp_path / "none") is None


def test_checkout_verifies_size_and_sha256(store: LocalStore, tmp_path: Path) -> None:
    objects = Objects(store)
    staged = objects.new()
    content = staged.add_bytes("doc", b"payload")
    staged.commit("docs/one.json", json.dumps({"doc": content.sha256}).encode())
    got = objects.checkout(None, {"doc": content}, tmp_path / "out")
    assert got is not None
    assert got["doc"].read_bytes() == b"payload"
    store.put_bytes(blob_key(content.sha256), b"PAYLOAD")
    assert objects.checkout(None, {"doc": content}, tmp_path / "bad") is None
    assert not (tmp_path / "bad" / "doc").exists()  # a bad download leaves no file behind
    assert objects.read(blob_key(content.sha256), content) is None
    assert objects.has(blob_key(content.sha256), content)  # the cheap check sees the size only
    store.put_bytes(blob_key(content.sha256), b"short")
    assert not objects.has(blob_key(content.sha256), content)


def test_a_blob_is_written_once_unless_it_is_damaged(
    recording: RecordingStore, tmp_path: Path
) -> None:
    objects = Objects(recording)
    path = _file(tmp_path, "f", b"same bytes")
    content = objects.add_blob(path)
    assert content == content_of_bytes(b"same bytes") == Content(_sha(b"same bytes"), 10)
    objects.add_blob(path, content)
    assert recording.writes == [blob_key(content.sha256)]
    recording.put_bytes(blob_key(content.sha256), b"trunc")  # a truncated copy is rewritten
    objects.add_blob(path, content)
    assert recording.get_bytes(blob_key(content.sha256)) == b"same bytes"
    objects.add_blob_bytes(b"same bytes")
    assert len(recording.writes) == 3


def test_list_and_remove(store: LocalStore) -> None:
    objects = Objects(store)
    staged = objects.new("entries/one")
    staged.add_bytes("part", b"p")
    staged.commit("entries/one/entry.json", b"{}")
    assert list(objects.list("entries/one")) == ["entries/one/entry.json", "entries/one/part"]
    objects.remove("entries/one/entry.json")
    assert objects.document("entries/one/entry.json") is None
