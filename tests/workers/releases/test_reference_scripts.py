"""The awk programs of the reference OS, run with the same busybox on the host."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.workers.releases.adv import adv_block
from workers.assembly.run import ToolError, run_tool
from workers.releases.reference_os import script

pytestmark = pytest.mark.integration


def _awk(tmp_path: Path, program: str, data: bytes) -> str:
    (tmp_path / program).write_bytes(script(program))
    return run_tool(["busybox", "awk", "-f", tmp_path / program], stdin=data).decode()


GO_YAML = """layers:
    - image: 0.sqsh
      metadata:
        name: hello
        version: 1.0.0
        author: Someone
        description: |
            name: not-a-layer
            version: 0.0.0
        compatibility:
            talos:
                version: '>= 1.0.0'
    - image: 1.sqsh
      metadata:
        name: "quoted"
        version: 'it''s 2'
        extraInfo: |
            - image: evil.sqsh
              metadata:
                name: evil
    - image: modules.dep.sqsh
      metadata:
        name: modules.dep
        version: 6.1.0-56-amd64
"""


def test_layers_are_listed_in_file_order_ignoring_nested_keys(tmp_path: Path) -> None:
    out = _awk(tmp_path, "layers.awk", GO_YAML.encode())
    assert out.splitlines() == [
        "0.sqsh\thello\t1.0.0",
        "1.sqsh\tquoted\tit's 2",
        "modules.dep.sqsh\tmodules.dep\t6.1.0-56-amd64",
    ]


def test_layers_at_zero_indent_and_empty_lists_are_understood(tmp_path: Path) -> None:
    text = b"layers:\n- image: a.sqsh\n  metadata:\n    version: 2 # c\n    name: x\nother: 1\n"
    assert _awk(tmp_path, "layers.awk", text) == "a.sqsh\tx\t2\n"
    assert _awk(tmp_path, "layers.awk", b"layers: []\n") == ""


def test_a_layer_without_a_version_fails(tmp_path: Path) -> None:
    text = b"layers:\n    - image: a.sqsh\n      metadata:\n        name: x\n"
    with pytest.raises(ToolError, match="layer 1 lacks image, name or version"):
        _awk(tmp_path, "layers.awk", text)


def test_adv_records_are_listed_with_value_offsets(tmp_path: Path) -> None:
    block = adv_block({0x0A: b"hello", 0x0C: b"", 0x10: b"x" * 300})
    od = run_tool(["od", "-An", "-v", "-tu1", "-j4"], stdin=block)
    out = _awk(tmp_path, "adv-records.awk", od)

    records = [tuple(int(n) for n in line.split()) for line in out.splitlines()]
    assert records == [(10, 12, 5), (12, 25, 0), (16, 33, 300)]
    _, offset, length = records[2]
    assert block[offset : offset + length] == b"x" * 300


def test_meta_env_items_are_split_and_newlines_escaped(tmp_path: Path) -> None:
    payload = b"0xa=line1\nline2;0xc=x=y;garbage;0x10=last"
    out = _awk(tmp_path, "meta-env.awk", payload)
    assert out.splitlines() == ["0xa\tline1\\nline2", "0xc\tx=y", "0x10\tlast"]


def test_gzip_payloads_are_what_busybox_can_unpack(tmp_path: Path) -> None:
    # Long META payloads arrive gzip-compressed; stage 2 unpacks them with busybox gunzip.
    payload = b"0xa=" + b"v" * 400
    packed = gzip.compress(payload, compresslevel=9, mtime=0)
    assert run_tool(["busybox", "gunzip", "-c"], stdin=packed) == payload
