"""The `/v2` installer index of a factory holding amd64 and arm64 releases lists both
platforms, and `skopeo copy --override-arch arm64` gets the arm64 image (its kernel is the
arm64 `kernel-arm64` asset)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.factory.live import LiveFactory
from tests.factory.test_registry_clients import SCHEMATIC, _layers, _ok, _ref, _skopeo

pytestmark = pytest.mark.integration


def test_index_lists_both_arches_and_override_arch_pulls_arm64(
    two_arch_factory: LiveFactory, tmp_path: Path
) -> None:
    live = two_arch_factory
    sid = live.create_schematic(SCHEMATIC)
    ref = _ref(live, "installer", sid, "v1.0.0")

    index = json.loads(_ok(_skopeo("inspect", "--raw", "--tls-verify=false", ref)))
    platforms = sorted(
        (m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]
    )
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]

    dest = tmp_path / "oci"
    _ok(
        _skopeo(
            "--override-arch", "arm64", "copy", "--src-tls-verify=false", ref, f"oci:{dest}:arm64"
        )
    )
    # arm64 releases have no installer base yet: the assets layer alone.
    (files,) = _layers(dest)
    assert sorted(files) == ["usr/install/arm64/initramfs.xz", "usr/install/arm64/vmlinuz"]
    assert files["usr/install/arm64/vmlinuz"] == live.get(f"/image/{sid}/v1.0.0/kernel-arm64")


def test_pxe_scripts_versions_catalog_and_form_offer_arm64(two_arch_factory: LiveFactory) -> None:
    live = two_arch_factory
    sid = live.create_schematic(SCHEMATIC)
    arm64 = live.get(f"/pxe/{sid}/v1.0.0/metal-arm64").decode()
    assert f"/image/{sid}/v1.0.0/kernel-arm64 " in arm64
    assert "console=ttyAMA0" in arm64
    assert live.get(f"/pxe/{sid}/v1.0.0/metal-aarch64").decode() == arm64

    assert "v1.0.0" in json.loads(live.get("/versions"))
    official = json.loads(live.get("/version/v1.0.0/extensions/official?arch=arm64"))
    assert "factory/hello" in [e["name"] for e in official]

    form = live.get("/?target=metal&version=v1.0.0").decode()
    assert 'id="arch-arm64" value="arm64"' in form
    assert not re.search(r'id="arch-arm64" value="arm64"\s+disabled', form)
