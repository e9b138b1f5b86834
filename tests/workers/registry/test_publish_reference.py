"""The reference release: two independent factories publish byte-identical installer indexes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from schematics import parse_schematic
from tests.workers.assets import stock_store
from workers.backends import choose_backend
from workers.dispatch.coordination import make_coordination
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.outputs.schematics_store import save_schematic
from workers.registry import content
from workers.registry.names import parse_repository
from workers.registry.publish import ensure_published
from workers.releases.stored import Release, blob_key
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration

SCHEMATIC = b"customization:\n  systemExtensions:\n    officialExtensions: [factory/hello]\n"


@pytest.mark.parametrize("image", ["metal-installer", "installer-secureboot"])
def test_independent_factories_publish_the_same_index(
    reference_release: tuple[LocalStore, Release], tmp_path: Path, image: str
) -> None:
    # SecureBoot bytes depend on the SecureBoot key, so both factories are given one.
    secureboot = load_or_create_secureboot_key(Settings(data_dir=tmp_path / "secureboot"))
    published = []
    for name in ("one", "two"):
        store, settings = stock_store(reference_release, tmp_path / name)
        settings = replace(
            settings,
            secureboot_key=str(secureboot.key_path),
            secureboot_cert=str(secureboot.cert_path),
        )
        schematic = parse_schematic(SCHEMATIC)
        repo = parse_repository(image, save_schematic(store, schematic))
        record = ensure_published(
            store, settings, make_coordination(choose_backend(settings)), repo, schematic, "v1.0.0"
        )
        assert content.read_verified(store, record.descriptor) is not None
        published.append((record.descriptor, store.get_bytes(blob_key(record.descriptor.hex))))

    assert published[0] == published[1]
