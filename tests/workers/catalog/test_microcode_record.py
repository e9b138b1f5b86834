"""An extension's record says whether it brings CPU microcode; one recorded before that was
recorded gets it when the same content is added again (bundled ones: at every start)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.workers.pipeline.test_link_safety import write_extension
from tests.workers.releases.fakes import save_fake_release
from workers.catalog.extensions import add_extension
from workers.catalog.records import ExtensionRecord, record_from_json
from workers.store import LocalStore


def test_an_old_record_learns_whether_its_extension_brings_microcode(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    source = write_extension(
        tmp_path / "src", "ucode", {"usr/lib/firmware/amd-ucode/microcode_amd.bin": b"a"}, {}
    )
    record = add_extension(store, source, "factory")
    assert record.cpu_microcode is True
    doc = json.loads(store.get_bytes(record.record_key))
    del doc["cpu_microcode"]  # as written before the field existed
    store.put_bytes(record.record_key, json.dumps(doc).encode())
    old = record_from_json(ExtensionRecord, store.get_bytes(record.record_key))
    assert old.cpu_microcode is None  # unknown: a cold initramfs with it waits for its build

    again = add_extension(store, source, "factory")
    assert again == record
    assert record_from_json(ExtensionRecord, store.get_bytes(record.record_key)) == record
