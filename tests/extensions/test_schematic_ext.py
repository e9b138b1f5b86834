from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from extensions.errors import ExtensionError
from extensions.manifest import parse_manifest
from extensions.package import pack_extension
from extensions.schematic_ext import make_schematic_extension, schematic_author
from tests.extensions.builders import write

SCHEMATIC_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
CANONICAL = b"customization:\n    extraKernelArgs:\n        - console=ttyS0\n"


def test_schematic_extension_content() -> None:
    data = make_schematic_extension(
        SCHEMATIC_ID, CANONICAL, schematic_author("http://factory.example:8080"), 1700000000
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == [
            "manifest.yaml",
            "rootfs",
            "rootfs/usr",
            "rootfs/usr/local",
            "rootfs/usr/local/share",
            "rootfs/usr/local/share/schematic",
            f"rootfs/usr/local/share/schematic/{SCHEMATIC_ID}",
        ]
        marker = tar.getmember(f"rootfs/usr/local/share/schematic/{SCHEMATIC_ID}")
        assert marker.isreg()
        assert marker.size == 0
        body = tar.extractfile("manifest.yaml").read()  # type: ignore[union-attr]
    m = parse_manifest(body)
    assert (m.name, m.version, m.compatibility) == ("schematic", SCHEMATIC_ID, ">= 1.0.0")
    assert m.author == "Image Factory (http://factory.example:8080)"
    assert m.extra_info.encode() == CANONICAL


def test_schematic_extension_is_reproducible_and_valid(tmp_path: Path) -> None:
    a = make_schematic_extension(SCHEMATIC_ID, CANONICAL, "Image Factory (x)", 1700000000)
    b = make_schematic_extension(SCHEMATIC_ID, CANONICAL, "Image Factory (x)", 1700000000)
    assert a == b
    # It passes the same validation as any uploaded extension, and is already canonical.
    packed = pack_extension(write(tmp_path / "s.tar", a), tmp_path / "c.tar", epoch=1700000000)
    assert (tmp_path / "c.tar").read_bytes() == a
    assert packed.manifest.name == "schematic"


def test_rejects_a_malformed_id() -> None:
    with pytest.raises(ExtensionError, match="invalid schematic ID"):
        make_schematic_extension("../../etc", CANONICAL, "a", 0)


def test_without_an_external_url_the_author_is_the_factorys_name() -> None:
    """With no configured URL nothing in an image depends on where a request came from."""
    assert schematic_author("") == "Image Factory"
