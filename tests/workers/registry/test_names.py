"""Repository names, tags and digests: what each image name means, and hostile segments."""

from __future__ import annotations

import pytest

from workers.registry.errors import DigestInvalid, NameInvalid, NameUnknown, TagInvalid
from workers.registry.names import (
    check_tag,
    is_digest_reference,
    is_signature_tag,
    parse_digest,
    parse_repository,
    signature_tag,
)

SID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
HEX = "ab" * 32


@pytest.mark.parametrize(
    ("image", "platform", "secureboot", "asset"),
    [
        ("installer", "metal", False, "installer-amd64.tar"),
        ("installer-secureboot", "metal", True, "installer-amd64-secureboot.tar"),
        ("metal-installer", "metal", False, "metal-installer-amd64.tar"),
        ("aws-installer", "aws", False, "aws-installer-amd64.tar"),
        ("nocloud-installer-secureboot", "nocloud", True, "nocloud-installer-amd64-secureboot.tar"),
        ("digital-ocean-installer", "digital-ocean", False, "digital-ocean-installer-amd64.tar"),
    ],
)
def test_image_names(image: str, platform: str, secureboot: bool, asset: str) -> None:
    repo = parse_repository(image, SID)

    assert (repo.platform, repo.secureboot) == (platform, secureboot)
    assert repo.asset_path("amd64") == asset
    assert repo.name == f"{image}/{SID}"
    assert repo.store_prefix == f"registry/{image}/{SID}/"


@pytest.mark.parametrize(
    "image",
    [
        "..",
        ".",
        "",
        "Installer",
        "installer/",
        "installer%2F..",
        "-installer",
        "a" * 129,
        "in\x00st",
    ],
)
def test_malformed_image_names_are_name_invalid(image: str) -> None:
    with pytest.raises(NameInvalid) as caught:
        parse_repository(image, SID)
    assert caught.value.status == 400
    assert caught.value.code == "NAME_INVALID"


@pytest.mark.parametrize("schematic_id", ["..", "", SID.upper(), "a" * 200, SID + "/x"])
def test_malformed_schematic_segments_are_name_invalid(schematic_id: str) -> None:
    with pytest.raises(NameInvalid):
        parse_repository("installer", schematic_id)


@pytest.mark.parametrize(
    "image", ["foo", "installer-foo", "moon-installer", "metal-installer-secureboot-x", "talos"]
)
def test_unknown_image_names_are_name_unknown(image: str) -> None:
    with pytest.raises(NameUnknown) as caught:
        parse_repository(image, SID)
    assert caught.value.status == 404
    assert "invalid image" in caught.value.message


@pytest.mark.parametrize("schematic_id", ["abc", "0" * 63, "0" * 65, "g" * 64])
def test_schematic_ids_other_than_64_hex_are_name_unknown(schematic_id: str) -> None:
    with pytest.raises(NameUnknown):
        parse_repository("installer", schematic_id)


def test_digests() -> None:
    assert parse_digest(f"sha256:{HEX}") == HEX
    assert is_digest_reference(f"sha256:{HEX}")
    assert not is_digest_reference("v1.0.0")


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + HEX.upper(),
        "sha256:" + HEX[:-1],
        "sha256:" + HEX + "0",
        "sha512:" + "ab" * 64,
        "sha256:" + "g" * 64,
        "sha256:../" + HEX,
        HEX,
        "sha256:",
    ],
)
def test_malformed_digests(digest: str) -> None:
    with pytest.raises(DigestInvalid) as caught:
        parse_digest(digest)
    assert (caught.value.status, caught.value.code) == (400, "DIGEST_INVALID")


@pytest.mark.parametrize("tag", ["v1.0.0", "1.0.0", "latest", "_x", "v1.0.0-beta.0", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "v1.0.0+build", "a/b", "ü"])
def test_malformed_tags(tag: str) -> None:
    with pytest.raises(TagInvalid) as caught:
        check_tag(tag)
    assert (caught.value.status, caught.value.code) == (400, "TAG_INVALID")


def test_signature_tags() -> None:
    assert signature_tag(HEX) == f"sha256-{HEX}.sig"
    assert is_signature_tag(signature_tag(HEX))
    assert not is_signature_tag(f"sha256-{HEX}.att")
    assert not is_signature_tag("v1.0.0")


def test_messages_quote_hostile_input_boundedly() -> None:
    with pytest.raises(NameInvalid) as caught:
        parse_repository("\x1b[31m" + "a" * 500, SID)
    assert "\x1b" not in caught.value.message
    assert len(caught.value.message) < 400
