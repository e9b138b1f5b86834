"""An extension's evidence is kept by the layer stage and read by the SBOM step: the kept
copy is what reading the tar gives, the SBOM step needs no extension tar once it is kept, and
an SBOM made from kept evidence has the bytes of one made without any."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.workers.assets import build_assets, stock_store, the_schematic
from workers.catalog.extensions import fetch_extension, fetch_verified
from workers.catalog.records import EXTENSIONS_PREFIX
from workers.evidence.documents import describe_build
from workers.evidence.extension_files import load_extension_files, read_extension_files
from workers.evidence.stored import load_document
from workers.outputs.finished_builds import load_built
from workers.planning.plans import SOURCE_BLOB, Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.releases.stored import Release, blob_key
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration

PATH = "initramfs-amd64.xz"
EVIDENCE = "layers/extension-evidence/"


@pytest.fixture(scope="module")
def built(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> tuple[LocalStore, Settings, Plan]:
    """A store after one cold build of the test schematic's initramfs."""
    root = tmp_path_factory.mktemp("extension-files")
    store, settings = stock_store(reference_release, root)
    build_assets(store, settings, [PATH], root / "out")
    schematic, sid = the_schematic()
    plan = make_plan(store, schematic, sid, "v1.0.0", parse_profile(PATH), settings)
    return store, settings, plan


def _stored_sbom(store: LocalStore, plan: Plan) -> bytes:
    built = load_built(store, plan)
    assert built is not None
    sbom = load_document(store, built.sbom_sha256)
    assert sbom is not None
    return sbom


def _sbom(store: LocalStore, plan: Plan, workdir: Path) -> bytes:
    built = load_built(store, plan)
    assert built is not None
    evidence = describe_build(store, plan, workdir, PATH, built.sha256, built.sha512)
    return evidence.sbom


def test_the_layer_stage_keeps_what_the_tar_says(
    built: tuple[LocalStore, Settings, Plan], tmp_path: Path
) -> None:
    store, _settings, plan = built
    assert len(plan.extensions) >= 3  # two catalog extensions and the schematic's own layer
    for number, ext in enumerate(plan.extensions):
        kept = load_extension_files(store, ext.digest, tmp_path)
        assert kept is not None, ext.name
        tar = tmp_path / f"{number}.tar"
        if ext.source == SOURCE_BLOB:
            fetch_verified(store, blob_key(ext.digest), ext.digest, tar)
        else:
            fetch_extension(store, ext.digest, tar)
        assert kept == read_extension_files(tar)
        assert kept.files, ext.name


def test_the_sbom_step_reads_kept_evidence_without_the_tars(
    built: tuple[LocalStore, Settings, Plan], tmp_path: Path
) -> None:
    store, _settings, plan = built
    catalog = [e for e in plan.extensions if e.source != SOURCE_BLOB]
    assert catalog
    key = f"{EXTENSIONS_PREFIX}{catalog[0].digest}.tar"
    saved = store.get_bytes(key)
    store.delete(key)
    try:
        assert _sbom(store, plan, tmp_path / "work") == _stored_sbom(store, plan)
    finally:
        store.put_bytes(key, saved)
    assert hashlib.sha256(saved).hexdigest() == catalog[0].digest


def test_an_sbom_without_kept_evidence_has_the_same_bytes_and_keeps_it(
    built: tuple[LocalStore, Settings, Plan], tmp_path: Path
) -> None:
    store, _settings, plan = built
    stored = _stored_sbom(store, plan)
    for key in list(store.list(EVIDENCE)):
        store.delete(key)
    assert all(load_extension_files(store, e.digest, tmp_path) is None for e in plan.extensions)
    assert _sbom(store, plan, tmp_path / "uncached") == stored
    # The evidence step kept what it read, for the next build.
    assert all(load_extension_files(store, e.digest, tmp_path) for e in plan.extensions)
    assert _sbom(store, plan, tmp_path / "cached") == stored
