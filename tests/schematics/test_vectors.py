"""Upstream's test vectors (image-factory-api.md §1.6 A): same schematic, same bytes, same ID."""

from __future__ import annotations

import hashlib

import pytest

from schematics import (
    Customization,
    DiskImage,
    MetaValue,
    Overlay,
    Schematic,
    SecureBoot,
    canonical_bytes,
    parse_schematic,
    schematic_id,
)

EMPTY_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
NOAPIC_ID = "9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c"
META_ID = "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"
SECUREBOOT_ID = "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"
SECTOR_ID = "92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea"
OVERLAY_ID = "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"

# TestID: struct -> canonical bytes -> ID.
STRUCT_VECTORS = [
    pytest.param(Schematic(), b"customization: {}\n", EMPTY_ID, id="empty"),
    pytest.param(
        Schematic(customization=Customization(extra_kernel_args=("noapic", "nolapic"))),
        b"customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n",
        NOAPIC_ID,
        id="config1",
    ),
    pytest.param(
        Schematic(customization=Customization(meta=(MetaValue(key=0x0A, value="foo"),))),
        b"customization:\n    meta:\n        - key: 10\n          value: foo\n",
        META_ID,
        id="meta",
    ),
    pytest.param(
        Schematic(
            customization=Customization(secureboot=SecureBoot(include_well_known_certificates=True))
        ),
        b"customization:\n    secureboot:\n        includeWellKnownCertificates: true\n",
        SECUREBOOT_ID,
        id="secureboot",
    ),
    pytest.param(
        Schematic(customization=Customization(disk_image=DiskImage(sector_size=4096))),
        b"customization:\n    diskImage:\n        sectorSize: 4096\n",
        SECTOR_ID,
        id="sector-size",
    ),
    pytest.param(
        Schematic(overlay=Overlay(name="rpi_generic", image="siderolabs/sbc-raspberrypi")),
        b"overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n"
        b"customization: {}\n",
        OVERLAY_ID,
        id="overlay",
    ),
]


@pytest.mark.parametrize(("schematic", "expected_bytes", "expected_id"), STRUCT_VECTORS)
def test_struct_to_id(schematic: Schematic, expected_bytes: bytes, expected_id: str) -> None:
    assert canonical_bytes(schematic) == expected_bytes
    assert hashlib.sha256(expected_bytes).hexdigest() == expected_id
    assert schematic_id(schematic) == expected_id


# TestUnmarshalID: input text (verbatim, no trailing newline) -> ID.
TEXT_VECTORS = [
    ("{}", EMPTY_ID),
    ("customization: {}", EMPTY_ID),
    ('customization: {"extraKernelArgs": []}', EMPTY_ID),
    ('{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}', NOAPIC_ID),
    (
        '{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}',
        NOAPIC_ID,
    ),
    (
        '{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [],'
        ' "systemExtensions": {}}}',
        META_ID,
    ),
    ('{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}', OVERLAY_ID),
    (
        '{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},'
        '"customization":{}}',
        OVERLAY_ID,
    ),
    ('{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}', SECUREBOOT_ID),
]


@pytest.mark.parametrize(("text", "expected_id"), TEXT_VECTORS)
def test_text_to_id(text: str, expected_id: str) -> None:
    assert schematic_id(parse_schematic(text.encode())) == expected_id


def test_the_stale_vga_vector_of_upstream_docs() -> None:
    # docs/api.md upstream prints 2a63b6e7... for this schematic; that is stale. The bytes hash to
    # eea1f953..., which is what a faithful implementation must give.
    text = b"customization:\n    extraKernelArgs:\n        - vga=791\n"
    schematic = parse_schematic(text)
    assert canonical_bytes(schematic) == text
    assert schematic_id(schematic) == (
        "eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073"
    )
    assert not schematic_id(schematic).startswith("2a63b6e7")


def test_unknown_top_level_key_gives_upstreams_exact_text() -> None:
    # Pinned by upstream's integration test (internal/integration/schematic_test.go).
    from schematics import SchematicError

    with pytest.raises(SchematicError) as caught:
        parse_schematic(b"something:")
    assert str(caught.value) == (
        "yaml: construct errors: line 1: field something not found in type schematic.Schematic"
    )
