"""The merged sysext image: last layer wins, firmware merged, release file, reproducible."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from workers.assembly.squashfs import extract_squashfs, list_squashfs, make_squashfs
from workers.assembly.sysext import make_sysext, sysext_name

pytestmark = pytest.mark.integration
EPOCH = 1700000000


def _layer(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    root = tmp_path / f"{name}-tree"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return make_squashfs(root, tmp_path / f"{name}.sqsh", epoch=EPOCH)


def _sysext(tmp_path: Path, out: str, umask: int = 0o022) -> Path:
    bottom = _layer(tmp_path, "a", {"usr/local/bin/tool": "old\n", "usr/share/a": "a\n"})
    top = _layer(tmp_path, "b", {"usr/local/bin/tool": "new\n", "usr/share/b": "b\n"})
    extras = tmp_path / "extras"
    (extras / "usr/lib/firmware/vendor").mkdir(parents=True, exist_ok=True)
    (extras / "usr/lib/firmware/vendor/fw.bin").write_bytes(b"\x01\x02")
    (extras / "kernel/x86/microcode").mkdir(parents=True, exist_ok=True)
    (extras / "kernel/x86/microcode/AuthenticAMD.bin").write_bytes(b"ucode")
    work = tmp_path / f"{out}-work"
    work.mkdir()
    old = os.umask(umask)
    try:
        return make_sysext(
            tmp_path / out,
            workdir=work,
            layers=[(bottom, None), (top, extras)],
            name=sysext_name("0123456789abcdef" * 4),
            arch="amd64",
            epoch=EPOCH,
        )
    finally:
        os.umask(old)


def test_merged_last_layer_wins_with_release_file(tmp_path: Path) -> None:
    image = _sysext(tmp_path, "ext.sqsh")
    paths = list_squashfs(image)
    for path in ("usr/share/a", "usr/share/b", "usr/lib/firmware/vendor/fw.bin"):
        assert path in paths
    assert not any(p.startswith("kernel") for p in paths)
    tree = extract_squashfs(image, tmp_path / "x")
    assert (tree / "usr/local/bin/tool").read_text() == "new\n"
    release = tree / "usr/lib/extension-release.d/extension-release.factory-0123456789ab"
    assert release.read_text() == "ID=_any\nARCHITECTURE=x86-64\n"


def test_reproducible_under_another_umask(tmp_path: Path) -> None:
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    one = _sysext(tmp_path / "1", "ext.sqsh")
    time.sleep(1.1)
    two = _sysext(tmp_path / "2", "ext.sqsh", umask=0o077)
    assert one.read_bytes() == two.read_bytes()
