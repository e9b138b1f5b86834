from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli import main
from tests.workers.releases.fakes import fake_files, save_fake_release
from workers.store import LocalStore


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMAGE_FACTORY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_release_list_prints_one_version_per_line_oldest_first(
    data_dir: Path, tmp_path: Path
) -> None:
    store = LocalStore(data_dir / "store")
    for version in ("v1.10.0", "v1.9.1"):
        save_fake_release(store, version, tmp_path)

    result = CliRunner().invoke(main, ["release", "list"])

    assert result.exit_code == 0, result.output
    assert result.output == "v1.9.1\nv1.10.0\n"


def test_release_import_of_an_incomplete_directory_fails_clearly(
    data_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    fake_files(src)
    (src / "initramfs.xz").unlink()

    result = CliRunner().invoke(
        main, ["release", "import", str(src), "--version", "v1.0.0", "--arch", "amd64"]
    )

    assert result.exit_code == 1
    assert "lacks initramfs.xz" in result.output
    assert CliRunner().invoke(main, ["release", "list"]).output == ""


def test_release_import_rejects_a_malformed_version(data_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    fake_files(src)
    result = CliRunner().invoke(
        main, ["release", "import", str(src), "--version", "one", "--arch", "amd64"]
    )
    assert result.exit_code == 1
    assert 'invalid version "one"' in result.output
