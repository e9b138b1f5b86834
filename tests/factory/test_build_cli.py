"""`image-factory build`: no server, the same stored builds the web service serves."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli import main
from tests.workers.releases.fakes import save_fake_release
from workers.outputs.finished_builds import BUILDS_PREFIX
from workers.store import LocalStore

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0]\n"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("IMAGE_FACTORY_DATA_DIR", str(data))
    save_fake_release(LocalStore(data / "store"), "v1.0.0", tmp_path / "releases")
    return data


def test_builds_assets_into_the_output_directory(data_dir: Path, tmp_path: Path) -> None:
    schematic = tmp_path / "schematic.yaml"
    schematic.write_bytes(SCHEMATIC)
    out = tmp_path / "out"

    result = CliRunner().invoke(
        main, ["build", str(schematic), "kernel-amd64", "cmdline-metal-amd64", "-o", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert (out / "cmdline-metal-amd64").read_text() == "talos.platform=metal console=ttyS0"
    kernel = (out / "kernel-amd64").read_bytes()
    assert kernel.startswith(b"MZ fake vmlinuz")
    digest = hashlib.sha256(kernel).hexdigest()
    summary = rf"kernel-amd64  {len(kernel)} bytes  sha256:{digest}  \d+\.\ds"
    assert any(re.fullmatch(summary, line) for line in result.stdout.splitlines()), result.stdout
    assert re.search(r"kernel +\[#+ *\] 100%", result.stderr)
    assert len(list(LocalStore(data_dir / "store").list(BUILDS_PREFIX))) == 2


def test_bad_inputs_fail_with_the_message(data_dir: Path, tmp_path: Path) -> None:
    schematic = tmp_path / "schematic.yaml"
    schematic.write_bytes(SCHEMATIC)
    result = CliRunner().invoke(main, ["build", str(schematic), "kernel-foo", "-o", "out"])
    assert result.exit_code == 1
    assert 'invalid architecture: "foo"' in result.output

    schematic.write_bytes(b"customization:\n  nope: 1\n")
    result = CliRunner().invoke(main, ["build", str(schematic), "kernel-amd64", "-o", "out"])
    assert result.exit_code == 1
    assert "nope" in result.output

    schematic.write_bytes(SCHEMATIC)
    result = CliRunner().invoke(
        main, ["build", str(schematic), "metal-arm64-uki.efi", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "version v1.0.0 is not available for arm64" in result.output
