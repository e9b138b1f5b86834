"""Disk format conversion with qemu-img (qcow2 output is reproducible; vmdk/vhd are not)."""

from __future__ import annotations

import json
from pathlib import Path

from workers.assembly.run import run_tool


def convert_disk(raw: Path, dest: Path, disk_format: str, options: str = "") -> Path:
    """Convert the raw image `raw` into `dest` in `disk_format` (e.g. qcow2 with
    `cluster_size=8k`); qemu-img skips zero clusters by content, so holes do not matter."""
    argv: list[str | Path] = ["qemu-img", "convert", "-f", "raw", "-O", disk_format]
    if options:
        argv += ["-o", options]
    run_tool([*argv, raw, dest])
    return dest


def check_disk(image: Path, disk_format: str) -> dict[str, object]:
    """`qemu-img check` as JSON (raises ToolError when the image is damaged)."""
    out = run_tool(["qemu-img", "check", "-f", disk_format, "--output=json", image])
    result: dict[str, object] = json.loads(out)
    return result
