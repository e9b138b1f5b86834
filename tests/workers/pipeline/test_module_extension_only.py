"""A schematic with an extension that carries kernel modules but no `kernelModules` of its
own still gets a module layer (with the merged modules.dep), not a failed build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.initramfs import read_members, unpack
from tests.workers.assets import build_assets, stock_store
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
    built = build_assets(store, settings, ["initramfs-amd64.xz"], tmp_path / "out", SCHEMATIC)
    tree = unpack(read_members(built["initramfs-amd64.xz"].read_bytes()))
    assert "modules.dep.sqsh" in tree
    assert "image: modules.dep.sqsh" in tree["extensions.yaml"].data.decode()
