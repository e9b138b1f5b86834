"""Garbage collection of unused uploads, on the local store and on S3 (SeaweedFS): what any
schematic uses survives and still builds the same, what nobody can use goes after the
grace, audited; the housekeeping and the command line run it."""

from __future__ import annotations

import subprocess
import sysconfig
import time
import uuid
from pathlib import Path

import pytest

from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.services import S3Server
from tests.workers.releases.fakes import save_fake_release
from workers.backends import choose_backend
from workers.catalog import add_extension, catalog_for, fetch_extension, list_extension_records
from workers.catalog.collect import ORPHAN_MIN_AGE, UNUSED_PREFIX, collect_unused_uploads
from workers.catalog.lifecycle import withdraw_extension
from workers.catalog.records import ORIGIN_BUNDLED, ExtensionRecord
from workers.catalog.resolutions import record_pins, resolve_durably
from workers.dispatch import celery_app as celery_side
from workers.releases.stored import load_release
from workers.settings import Settings
from workers.store import LocalStore, Store
from workers.store.s3 import S3Store
from workers.tenancy.audit import read_events

WEEK = 7 * 24 * 3600.0


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def stocked(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store: Store
    if request.param == "local":
        store = LocalStore(tmp_path / "store")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = f"test-{uuid.uuid4().hex[:16]}"
        store = S3Store.from_settings(server.settings(tmp_path, bucket))
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    return store


def add(
    store: Store, tmp_path: Path, version: str, name: str = "tool", origin: str = "upload"
) -> ExtensionRecord:
    members = hello_members([file(f"rootfs/usr/local/share/{name}", version.encode())])
    members[0] = file("manifest.yaml", manifest(name, version))
    source = write(tmp_path / f"{name}-{version}.tar", tar_bytes(members))
    if origin == ORIGIN_BUNDLED:
        return add_extension(store, source, "ns", origin=ORIGIN_BUNDLED)
    return add_extension(store, source, "ns", uploaded_by="uploader")


def _stored(store: Store, record: ExtensionRecord) -> bool:
    return store.exists(record.record_key) and store.exists(record.tar_key)


def test_what_a_schematic_uses_survives_and_the_rest_goes(stocked: Store, tmp_path: Path) -> None:
    release = load_release(stocked, "v1.0.0", "amd64")
    resolved = add(stocked, tmp_path, "1.0.0")  # an existing schematic resolved to it
    assert resolve_durably(stocked, "a" * 64, release, ["ns/tool"]).records == (resolved,)
    pinned = add(stocked, tmp_path, "2.0.0")  # a stored schematic pins it
    record_pins(stocked, "b" * 64, ["ns/tool@2.0.0"])
    superseded = add(stocked, tmp_path, "3.0.0")  # nobody used it before 4.0.0 came
    offered = add(stocked, tmp_path, "4.0.0")  # what the catalog offers: unpinned names get it
    bundled = add(stocked, tmp_path, "0.1.0", "base", origin=ORIGIN_BUNDLED)
    other = add(stocked, tmp_path, "1.0.0", "other")
    withdraw_extension(stocked, "ns/other", "1.0.0", "admin")  # withdrawn, never used

    collected = collect_unused_uploads(stocked, 0, "housekeeping")

    assert sorted((c.kind, c.subject) for c in collected) == [
        ("extension", "ns/other 1.0.0"),
        ("extension", "ns/tool 3.0.0"),
    ]
    for kept in (resolved, pinned, offered, bundled):
        assert _stored(stocked, kept)
    for gone in (superseded, other):
        assert not stocked.exists(gone.record_key)
        assert not stocked.exists(gone.tar_key)
    assert set(list_extension_records(stocked)) == {resolved, pinned, offered, bundled}
    # The existing schematics build what they built before: same records, fetchable tars.
    assert resolve_durably(stocked, "a" * 64, release, ["ns/tool"]).records == (resolved,)
    assert resolve_durably(stocked, "b" * 64, release, ["ns/tool@2.0.0"]).records == (pinned,)
    fetch_extension(stocked, resolved.digest, tmp_path / "resolved.tar")
    assert [r.version for r in catalog_for(stocked, "v1.0.0", "amd64")] == ["0.1.0", "4.0.0"]
    audited = [(e.actor, e.action, e.subject, e.digest) for e in read_events(stocked)]
    assert ("housekeeping", "extension.collect", "ns/tool 3.0.0", superseded.digest) in audited
    assert ("housekeeping", "extension.collect", "ns/other 1.0.0", other.digest) in audited
    assert list(stocked.list(UNUSED_PREFIX)) == []


def test_an_upload_goes_only_after_a_whole_grace_unused(stocked: Store, tmp_path: Path) -> None:
    old = add(stocked, tmp_path, "1.0.0")
    add(stocked, tmp_path, "2.0.0")
    now = time.time()
    assert collect_unused_uploads(stocked, WEEK, "housekeeping", now) == []  # marked only
    assert collect_unused_uploads(stocked, WEEK, "housekeeping", now + WEEK - 1) == []
    assert _stored(stocked, old)
    gone = collect_unused_uploads(stocked, WEEK, "housekeeping", now + WEEK)
    assert [c.digest for c in gone] == [old.digest]
    assert not _stored(stocked, old)


def test_an_upload_used_again_starts_its_grace_over(stocked: Store, tmp_path: Path) -> None:
    old = add(stocked, tmp_path, "1.0.0")
    add(stocked, tmp_path, "2.0.0")
    now = time.time()
    collect_unused_uploads(stocked, WEEK, "housekeeping", now)
    assert list(stocked.list(UNUSED_PREFIX)) == [f"{UNUSED_PREFIX}extension/{old.digest}"]
    record_pins(stocked, "c" * 64, ["ns/tool@1.0.0"])  # a new schematic pins it
    assert collect_unused_uploads(stocked, WEEK, "housekeeping", now + WEEK) == []
    assert list(stocked.list(UNUSED_PREFIX)) == []
    assert _stored(stocked, old)


def test_a_tar_without_its_record_goes_once_no_upload_can_still_be_writing_it(
    stocked: Store, tmp_path: Path
) -> None:
    digest = "e" * 64
    key = f"extensions/{digest}.tar"
    stocked.put_bytes(key, b"half an upload")
    now = time.time()
    assert collect_unused_uploads(stocked, 0, "housekeeping", now) == []
    assert stocked.exists(key)
    gone = collect_unused_uploads(stocked, 0, "housekeeping", now + ORPHAN_MIN_AGE)
    assert [(c.kind, c.subject) for c in gone] == [("orphan", key)]
    assert not stocked.exists(key)


def test_the_housekeeping_and_the_command_line_collect(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", upload_grace_seconds=0)
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    first = add(store, tmp_path, "1.0.0")
    add(store, tmp_path, "2.0.0")
    celery_side.keep_house(celery_side.make_celery(settings, choose_backend(settings)))
    assert not _stored(store, first)

    second = add(store, tmp_path, "3.0.0")  # supersedes 2.0.0
    superseded = [r for r in list_extension_records(store) if r.version == "2.0.0"]
    command = str(Path(sysconfig.get_path("scripts")) / "image-factory")
    env = {
        "IMAGE_FACTORY_DATA_DIR": str(settings.data_dir),
        "IMAGE_FACTORY_UPLOAD_GRACE_SECONDS": "0",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [command, "extension", "collect"], env=env, check=True, capture_output=True, text=True
    )
    assert done.stdout == (f"collected extension ns/tool 2.0.0 sha256:{superseded[0].digest}\n")
    assert list_extension_records(store) == [second]
    actors = [(e.actor, e.action) for e in read_events(store) if e.action.endswith("collect")]
    assert actors == [("housekeeping", "extension.collect"), ("cli", "extension.collect")]
