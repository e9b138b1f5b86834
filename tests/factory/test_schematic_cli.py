"""`image-factory schematic id|canonical`: through click, and through the installed script."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from factory.cli import main

SCHEMATIC = b'{"customization": {"meta": [{"key": 10, "value": "foo"}]}}'
SCHEMATIC_ID = "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"
CANONICAL = b"customization:\n    meta:\n        - key: 10\n          value: foo\n"


def test_id_of_a_file(tmp_path: Path) -> None:
    source = tmp_path / "s.yaml"
    source.write_bytes(SCHEMATIC)
    result = CliRunner().invoke(main, ["schematic", "id", str(source)])
    assert result.exit_code == 0
    assert result.stdout == SCHEMATIC_ID + "\n"


def test_id_of_standard_input() -> None:
    for args in (["schematic", "id", "-"], ["schematic", "id"]):
        result = CliRunner().invoke(main, args, input=SCHEMATIC)
        assert result.exit_code == 0
        assert result.stdout == SCHEMATIC_ID + "\n"


def test_canonical_writes_the_exact_bytes() -> None:
    result = CliRunner().invoke(main, ["schematic", "canonical", "-"], input=SCHEMATIC)
    assert result.exit_code == 0
    assert result.stdout_bytes == CANONICAL  # no extra newline


def test_invalid_input_exits_2_with_the_error_on_stderr() -> None:
    result = CliRunner().invoke(
        main, ["schematic", "id"], input=b"customization:\n  bootloader: lilo\n"
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "lilo does not belong to BootloaderKind values" in result.stderr
    canonical = CliRunner().invoke(main, ["schematic", "canonical"], input=b"\x00")
    assert canonical.exit_code == 2
    assert canonical.stdout_bytes == b""
    assert "NUL byte" in canonical.stderr


def test_oversized_input_exits_2() -> None:
    result = CliRunner().invoke(main, ["schematic", "id"], input=b"#" * 2_000_000)
    assert result.exit_code == 2
    assert "more than the limit of 1048576 bytes" in result.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schematic", "id", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "absent.yaml" in result.stderr


def test_the_installed_console_script(tmp_path: Path) -> None:
    script = shutil.which("image-factory")
    assert script is not None, "pip install -e . provides the image-factory console script"
    by_id = subprocess.run(
        [script, "schematic", "id"], input=SCHEMATIC, capture_output=True, check=True, timeout=60
    )
    assert by_id.stdout == SCHEMATIC_ID.encode() + b"\n"
    source = tmp_path / "s.json"
    source.write_bytes(SCHEMATIC)
    canonical = subprocess.run(
        [script, "schematic", "canonical", str(source)], capture_output=True, check=True, timeout=60
    )
    assert canonical.stdout == CANONICAL
    invalid = subprocess.run(
        [script, "schematic", "id", "-"], input=b"something:", capture_output=True, timeout=60
    )
    assert invalid.returncode == 2
    assert invalid.stdout == b""
    assert b"field something not found in type schematic.Schematic" in invalid.stderr
