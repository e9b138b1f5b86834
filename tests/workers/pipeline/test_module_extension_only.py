"""A schematic with an extension that carries kernel modules but no `kernelModules` of its
own still gets a module layer (with the merged modules.dep), not a failed build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.workers.assets import build_assets, stock_store
from workers.assembly.compress import decompress_file
from workers.assembly.cpio import list_cpio
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

SCHEMATIC = b"""
customization:
  systemExtensions:
    officialExtensions: [factory/dummy-module]
"""


def test_module_layer_without_requested_modules(
    reference_release: tuple[LocalStore, Release], tmp_path: Path
) -> None:
    store, settings = stock_store(reference_release, tmp_path)
    build_assets(store, settings, ["initramfs-amd64.xz"], tmp_path / "out", SCHEMATIC)
    [segment_key] = [k for k in store.list("layers/segment/") if k.endswith("segment.cpio.zst")]
    store.download(segment_key, tmp_path / "segment.cpio.zst")
    names = list_cpio(decompress_file(tmp_path / "segment.cpio.zst", tmp_path / "segment.cpio"))
    assert "modules.dep.sqsh" in names
    assert "extensions.yaml" in names
