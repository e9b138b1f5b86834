"""VHD (fixed, exact size) and OVA (OVF + stream-optimized VMDK + manifest): structure with
qemu-img and tar, and byte-identical output across two conversions."""

from __future__ import annotations

import hashlib
import json
import struct
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from extensions.package import unpack_tar
from workers.assembly.gpt import guid_from_label
from workers.assembly.ova import FIXED_CID, make_ova
from workers.assembly.run import run_tool
from workers.assembly.vhd import UNIQUE_ID_LABEL, VHD_EPOCH, footer_checksum, make_vhd

pytestmark = pytest.mark.integration
EPOCH = 1700000000
SIZE = 64 * 1024 * 1024
OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as f:
        f.truncate(SIZE)
        f.seek(3 * 1024 * 1024 + 7)
        f.write(b"some data" * 1000)
    return raw


def _info(image: Path, fmt: str) -> dict[str, object]:
    info: dict[str, object] = json.loads(
        run_tool(["qemu-img", "info", "-f", fmt, "--output=json", image])
    )
    return info


def test_vhd_fixed_exact_size_pinned_footer(tmp_path: Path) -> None:
    vhd = make_vhd(_raw(tmp_path), tmp_path / "disk.vhd", epoch=EPOCH)
    assert _info(vhd, "vpc")["virtual-size"] == SIZE
    assert vhd.stat().st_size == SIZE + 512
    footer = vhd.read_bytes()[-512:]
    assert footer[:8] == b"conectix"
    assert struct.unpack_from(">Q", footer, 16)[0] == 0xFFFFFFFFFFFFFFFF  # no dynamic header
    assert struct.unpack_from(">I", footer, 60)[0] == 2  # disk type: fixed
    assert struct.unpack_from(">Q", footer, 48)[0] == SIZE  # current size
    assert struct.unpack_from(">I", footer, 24)[0] == EPOCH - VHD_EPOCH
    assert footer[68:84] == guid_from_label(UNIQUE_ID_LABEL).bytes
    assert struct.unpack_from(">I", footer, 64)[0] == footer_checksum(footer)
    with vhd.open("rb") as f:
        f.seek(3 * 1024 * 1024 + 7)
        assert f.read(9) == b"some data"


def test_ova_members_manifest_descriptor_and_vmdk(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    ova = make_ova(_raw(tmp_path), tmp_path / "disk.ova", workdir=work, name="factory", epoch=EPOCH)
    listing = run_tool(["tar", "-tvf", ova]).decode().splitlines()
    assert [line.split()[-1] for line in listing] == ["disk.ovf", "disk.mf", "disk.vmdk"]
    assert all(line.split()[1] == "0/0" for line in listing)
    assert all("2023-11-14 22:13" in line for line in listing)
    out = tmp_path / "out"
    out.mkdir()
    unpack_tar(ova, out)
    digests = {
        name: hashlib.sha256((out / name).read_bytes()).hexdigest()
        for name in ("disk.vmdk", "disk.ovf")
    }
    assert (out / "disk.mf").read_text() == (
        f"SHA256(disk.vmdk)= {digests['disk.vmdk']}\nSHA256(disk.ovf)= {digests['disk.ovf']}\n"
    )
    envelope = ET.parse(out / "disk.ovf").getroot()
    file_ref = envelope.find(f"{OVF}References/{OVF}File")
    disk = envelope.find(f"{OVF}DiskSection/{OVF}Disk")
    assert file_ref is not None
    assert disk is not None
    assert file_ref.get(f"{OVF}size") == str((out / "disk.vmdk").stat().st_size)
    assert disk.get(f"{OVF}capacity") == "64"
    vmdk = out / "disk.vmdk"
    info = _info(vmdk, "vmdk")
    assert info["virtual-size"] == SIZE
    specific = info["format-specific"]
    assert isinstance(specific, dict)
    assert specific["data"]["create-type"] == "streamOptimized"
    assert specific["data"]["cid"] == int(FIXED_CID, 16)
    run_tool(["qemu-img", "check", "-f", "vmdk", vmdk])
    run_tool(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", tmp_path / "disk.raw", vmdk])


def test_reproducible(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    digests = []
    for i in range(2):
        work = tmp_path / f"w{i}"
        work.mkdir()
        vhd = make_vhd(raw, work / "disk.vhd", epoch=EPOCH)
        ova = make_ova(raw, work / "disk.ova", workdir=work, name="factory", epoch=EPOCH)
        digests.append((vhd.read_bytes(), ova.read_bytes()))
        time.sleep(1.1)
    assert digests[0] == digests[1]
