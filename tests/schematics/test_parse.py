"""What the parser accepts and how it types it (image-factory-api.md §1.2)."""

from __future__ import annotations

import pytest

from schematics import (
    Bootloader,
    Customization,
    MetaValue,
    Schematic,
    SchematicError,
    canonical_bytes,
    parse_schematic,
    schematic_id,
)
from schematics.scalars import Timestamp


def args_of(text: str) -> tuple[str, ...]:
    return parse_schematic(text.encode()).customization.extra_kernel_args


def test_scalars_where_strings_are_expected_keep_their_text() -> None:
    assert args_of("customization:\n  extraKernelArgs: [123, true]\n") == ("123", "true")
    # PyYAML would turn these into bools, floats and ints; go-yaml keeps the text.
    assert args_of(
        "customization:\n  extraKernelArgs: [yes, no, on, 1.10, 0x0a, 1_0, 2001-01-01]"
    ) == (
        "yes",
        "no",
        "on",
        "1.10",
        "0x0a",
        "1_0",
        "2001-01-01",
    )


def test_quoted_and_block_scalars_are_strings() -> None:
    text = "customization:\n  extraKernelArgs:\n    - '1'\n    - \"null\"\n    - |-\n      x\n"
    assert args_of(text) == ("1", "null", "x")


def test_null_items_are_dropped_from_string_lists() -> None:
    assert args_of("customization:\n  extraKernelArgs: [a, ~, null, '', b]\n") == ("a", "", "b")


def test_tagged_values_in_string_fields() -> None:
    assert args_of("customization:\n  extraKernelArgs: [!!binary aGVsbG8=, !!str 12, ! 13]\n") == (
        "hello",
        "12",
        "13",
    )


def test_meta_keys_in_decimal_or_hex() -> None:
    schematic = parse_schematic(
        b"customization:\n  meta:\n    - {key: 0xa, value: foo}\n    - {key: 255}\n    - {key: 0}\n"
    )
    assert schematic.customization.meta == (
        MetaValue(10, "foo"),
        MetaValue(255, ""),
        MetaValue(0, ""),
    )


def test_meta_value_keeps_its_text() -> None:
    with pytest.raises(SchematicError, match="cannot construct !!map into string"):
        parse_schematic(b'customization:\n  meta: [{key: 10, value: {"a": 1}}]\n')
    with_text = parse_schematic(
        b'customization:\n  meta:\n    - key: 0x0a\n      value: \'{"externalIPs":["1.2.3.4"]}\'\n'
    )
    assert with_text.customization.meta == (MetaValue(10, '{"externalIPs":["1.2.3.4"]}'),)


def test_sector_size_is_unsigned() -> None:
    assert (
        parse_schematic(
            b"customization: {diskImage: {sectorSize: 4096}}"
        ).customization.disk_image.sector_size
        == 4096
    )
    assert (
        parse_schematic(
            b"customization: {diskImage: {sectorSize: 4096.0}}"
        ).customization.disk_image.sector_size
        == 4096
    )
    big = parse_schematic(b"customization: {diskImage: {sectorSize: 18446744073709551615}}")
    assert big.customization.disk_image.sector_size == 2**64 - 1


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("grub", Bootloader.GRUB),
        ("GRUB", Bootloader.GRUB),
        ("Sd-Boot", Bootloader.SD_BOOT),
        ("dual-boot", Bootloader.DUAL_BOOT),
        ("none", Bootloader.NONE),
        ("~", Bootloader.NONE),
    ],
)
def test_bootloader_is_case_insensitive(written: str, kind: Bootloader) -> None:
    schematic = parse_schematic(f"customization:\n  bootloader: {written}\n".encode())
    assert schematic.customization.bootloader is kind


def test_bootloader_is_written_in_lower_case() -> None:
    assert canonical_bytes(parse_schematic(b"customization: {bootloader: SD-BOOT}")) == (
        b"customization:\n    bootloader: sd-boot\n"
    )


@pytest.mark.parametrize(
    ("written", "value"),
    [("true", True), ("false", False), ("yes", True), ("Off", False), ("~", False), ("'on'", True)],
)
def test_booleans_accept_yaml11_words(written: str, value: bool) -> None:
    schematic = parse_schematic(
        f"customization:\n  secureboot:\n    includeWellKnownCertificates: {written}\n".encode()
    )
    assert schematic.customization.secureboot.include_well_known_certificates is value


@pytest.mark.parametrize(
    "text",
    [b"", b"null", b"~", b"---\n", b"{}", b"customization:", b"customization: null", b"overlay: ~"],
)
def test_null_and_empty_documents_are_the_empty_schematic(text: bytes) -> None:
    if not text:
        with pytest.raises(SchematicError, match="EOF"):
            parse_schematic(text)
        return
    assert parse_schematic(text) == Schematic()


def test_only_the_first_document_is_read() -> None:
    schematic = parse_schematic(b"customization: {extraKernelArgs: [a]}\n---\nnot: [valid\n")
    assert schematic.customization.extra_kernel_args == ("a",)


def test_null_keys_are_skipped_as_go_yaml_does() -> None:
    assert parse_schematic(b"~: 1\ncustomization: {}\n") == Schematic()


def test_json_with_tabs_and_unicode_escapes() -> None:
    text = b'{\n\t"customization": {\n\t\t"extraKernelArgs": ["caf\\u00e9", "a\\/b", "\\""]\n\t}\n}'
    assert args_of(text.decode()) == ("café", "a/b", '"')


def test_yaml_with_bom_and_crlf_line_ends() -> None:
    text = b"\xef\xbb\xbfcustomization:\r\n  extraKernelArgs:\r\n    - noapic\r\n"
    assert parse_schematic(text).customization.extra_kernel_args == ("noapic",)


def test_utf16_with_bom_is_accepted() -> None:
    text = "customization:\n  extraKernelArgs: [été]\n".encode("utf-16")
    assert parse_schematic(text).customization.extra_kernel_args == ("été",)


def test_plain_scalars_may_contain_tabs() -> None:
    schematic = parse_schematic(b"customization:\n  kernelModules:\n    - a\tb\t\n")
    assert schematic.customization.kernel_modules == ("a\tb",)


def test_aliases_expand_within_budget() -> None:
    schematic = parse_schematic(
        b"customization:\n  extraKernelArgs: &args [a, b]\n  kernelModules: *args\n"
    )
    assert schematic.customization.kernel_modules == ("a", "b")


def test_kernel_modules_are_ours_and_parse_like_extra_kernel_args() -> None:
    schematic = parse_schematic(b"customization:\n  kernelModules: [zfs, 123]\n")
    assert schematic.customization == Customization(kernel_modules=("zfs", "123"))


def test_options_are_typed_like_go_yaml() -> None:
    schematic = parse_schematic(
        b"overlay:\n  name: x\n  options:\n"
        b"    i: 12\n    f: 1.5\n    b: true\n    n: ~\n    s: yes\n    t: 2001-01-01\n"
        b"    l: [1, a]\n    m: {k: v}\n    1: numeric key\n"
    )
    assert dict(schematic.overlay.options) == {
        "i": 12,
        "f": 1.5,
        "b": True,
        "n": None,
        "s": "yes",
        "t": Timestamp("2001-01-01T00:00:00Z"),
        "l": [1, "a"],
        "m": {"k": "v"},
        "1": "numeric key",
    }


def test_errors_are_collected_and_reported_together_in_document_order() -> None:
    with pytest.raises(SchematicError) as caught:
        parse_schematic(
            b"customization:\n  bogus: 1\n  meta: [{key: 300}]\n  bootloader: lilo\nextra: 1\n"
        )
    assert str(caught.value) == (
        "yaml: construct errors: "
        "line 2: field bogus not found in type schematic.Customization (at customization.bogus); "
        "line 3: cannot construct !!int `300` into uint8 (at customization.meta[0].key); "
        "line 4: lilo does not belong to BootloaderKind values (at customization.bootloader); "
        "line 5: field extra not found in type schematic.Schematic"
    )


def test_schematics_are_hashable_values() -> None:
    text = b"overlay: {name: x, options: {a: [1]}}\ncustomization: {extraKernelArgs: [a]}\n"
    first, second = parse_schematic(text), parse_schematic(text)
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_schematic_with_every_field_round_trips() -> None:
    text = (
        b"overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n"
        b"    options:\n        configTxtAppend: |\n            dtoverlay=vc4-kms-v3d\n"
        b"customization:\n"
        b"    embeddedMachineConfiguration: |\n        version: v1alpha1\n"
        b"    extraKernelArgs:\n        - console=ttyS0\n        - -talos.halt_if_installed\n"
        b'    meta:\n        - key: 10\n          value: \'{"externalIPs":["1.2.3.4"]}\'\n'
        b"    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n"
        b"    bootloader: dual-boot\n"
        b"    secureboot:\n        enrollKeys: if-safe\n"
        b"        includeWellKnownCertificates: true\n"
        b"    diskImage:\n        sectorSize: 4096\n"
        b"    kernelModules:\n        - zfs\n"
    )
    schematic = parse_schematic(text)
    assert canonical_bytes(schematic) == text
    assert parse_schematic(canonical_bytes(schematic)) == schematic
    assert len(schematic_id(schematic)) == 64
