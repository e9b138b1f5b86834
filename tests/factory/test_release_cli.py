from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli import main
from tests.workers.releases.fakes import fake_files, save_fake_release
from workers.assembly.installer import make_installer_image
from workers.releases.installer_base import fetch_installer_base
from workers.releases.manifest import RELEASE_FILES
from workers.releases.stored import Release, load_release
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


@pytest.mark.integration
def test_release_import_takes_an_installer_base(
    data_dir: Path, tmp_path: Path, reference_release: tuple[LocalStore, Release]
) -> None:
    ref_store, ref = reference_release
    src = tmp_path / "src"
    src.mkdir()
    for name in RELEASE_FILES:
        ref.fetch(ref_store, name, src / name)
    # The reference release's base, handed over as Talos' would be: a docker-archive.
    base = fetch_installer_base(ref, ref_store, tmp_path / "base")
    assert base is not None
    work = tmp_path / "work"
    work.mkdir()
    archive = make_installer_image(
        tmp_path / "installer-base.tar",
        workdir=work,
        arch="amd64",
        assets={},
        repo_tag="ghcr.io/siderolabs/installer-base:v1.10.0",
        epoch=0,
        base_config=base.config_json(),
        base_layers=base.layers,
    )
    args = ["release", "import", str(src), "--version", "v1.10.0", "--arch", "amd64"]

    refused = CliRunner().invoke(main, [*args, "--installer-base", str(src / "vmlinuz")])
    assert refused.exit_code == 1
    assert "OCI layout directory or a docker-archive" in refused.output
    assert CliRunner().invoke(main, ["release", "list"]).output == ""

    result = CliRunner().invoke(main, [*args, "--installer-base", str(archive)])
    assert result.exit_code == 0, result.output
    imported = load_release(LocalStore(data_dir / "store"), "v1.10.0", "amd64")
    assert imported.installer_base is not None
    # The base's layers byte for byte, then the (empty) assets layer of the archive.
    assert imported.installer_base.layers[0] == ref.installer_base.layers[0]  # type: ignore[union-attr]
    assert len(imported.installer_base.layers) == 2
