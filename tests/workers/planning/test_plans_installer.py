"""Installer plans of a release with an installer base: the installer carries the machine's
command line, so the platform, extra args and META are in the key; without a base they are
not (tests/workers/planning/test_plans_boot_media.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tests.workers.planning.test_plans import BASE, _extension, _plan
from tests.workers.releases.fakes import fake_files, fake_manifest
from workers.releases.installer_base import BaseImage, store_installer_base
from workers.releases.stored import save_release
from workers.settings import Settings
from workers.store import LocalStore


def _release_with_base(store: LocalStore, tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(b"\0" * 1024)
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": ["sha256:0"]}}
    base = store_installer_base(store, BaseImage(json.dumps(config).encode(), (layer,)), tmp_path)
    files = fake_files(tmp_path / "release")
    save_release(store, replace(fake_manifest("v1.0.0", files), installer_base=base), files)


def test_platform_args_and_meta_shape_a_runnable_installer(
    store: LocalStore, settings: Settings, tmp_path: Path
) -> None:
    _release_with_base(store, tmp_path)
    _extension(store, tmp_path, "hello")

    def key(path: str, text: str = BASE) -> str:
        return _plan(store, settings, path, text).key

    assert key("metal-installer-amd64.tar") == key("installer-amd64.tar")
    assert key("aws-installer-amd64.tar") != key("installer-amd64.tar")
    assert key("installer-amd64.tar", BASE.replace("value: net", "value: other")) != key(
        "installer-amd64.tar"
    )
    assert key("installer-amd64.tar", BASE.replace("console=ttyS0", "quiet")) != key(
        "installer-amd64.tar"
    )
    plan = _plan(store, settings, "installer-amd64.tar")
    assert plan.to_json()["installer_cmdline"] == {
        "platform": "metal",
        "extra_kernel_args": ["console=ttyS0"],
        "meta": [[0x0A, "net"]],
    }
    secure = _plan(store, settings, "installer-amd64-secureboot.tar")
    assert "installer_cmdline" not in secure.to_json()
