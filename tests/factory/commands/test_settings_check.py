"""Every command reads the settings first: an unknown `IMAGE_FACTORY_*` variable stops it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from factory.cli import main


def test_the_cli_refuses_an_unknown_variable_before_doing_anything(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["release", "list"], env={"IMAGE_FACTORY_DATA_DIRR": str(tmp_path)}
    )
    assert result.exit_code == 1
    assert "did you mean IMAGE_FACTORY_DATA_DIR?" in result.output
    assert not any(tmp_path.iterdir())
