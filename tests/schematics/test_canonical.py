"""The canonical form, rule by rule (image-factory-api.md §1.3)."""

from __future__ import annotations

import pytest

from schematics import (
    Bootloader,
    Customization,
    DiskImage,
    MetaValue,
    Overlay,
    Schematic,
    SecureBoot,
    SystemExtensions,
    canonical_bytes,
    parse_schematic,
)
from schematics.canonical import natural_less
from schematics.model import OptionValue


def args_yaml(*args: str) -> str:
    """Canonical YAML of a schematic whose only content is these extra kernel args."""
    schematic = Schematic(customization=Customization(extra_kernel_args=args))
    return canonical_bytes(schematic).decode()


def one_arg(value: str) -> str:
    """How one string is written as a sequence item (the text after `- `)."""
    text = args_yaml(value)
    prefix = "customization:\n    extraKernelArgs:\n        - "
    assert text.startswith(prefix)
    return text[len(prefix) : -1]


def options_yaml(options: dict[str, OptionValue]) -> str:
    schematic = Schematic(overlay=Overlay(name="o", options=options))
    text = canonical_bytes(schematic).decode()
    prefix = 'overlay:\n    image: ""\n    name: o\n    options:\n'
    suffix = "customization: {}\n"
    assert text.startswith(prefix)
    assert text.endswith(suffix)
    return text[len(prefix) : -len(suffix)]


# Rule 1: indentation --------------------------------------------------------------------------


def test_sequences_are_indented_under_their_key() -> None:
    assert args_yaml("a", "b") == "customization:\n    extraKernelArgs:\n        - a\n        - b\n"


def test_mappings_in_sequences_start_after_the_dash() -> None:
    schematic = Schematic(
        customization=Customization(meta=(MetaValue(0x0A, "foo"), MetaValue(0, "")))
    )
    assert canonical_bytes(schematic) == (
        b"customization:\n    meta:\n"
        b"        - key: 10\n          value: foo\n"
        b'        - key: 0\n          value: ""\n'
    )


def test_nested_sequences_and_maps_in_options() -> None:
    assert options_yaml({"m": [["a", "b"], {"k": [1]}], "p": {"x": {"w": "z"}}}) == (
        "        m:\n"
        "            - - a\n"
        "              - b\n"
        "            - k:\n"
        "                - 1\n"
        "        p:\n"
        "            x:\n"
        "                w: z\n"
    )


# Rule 2: empty collections ---------------------------------------------------------------------


def test_empty_customization_is_a_flow_mapping() -> None:
    assert canonical_bytes(Schematic()) == b"customization: {}\n"


def test_empty_collections_in_options_stay_flow() -> None:
    assert options_yaml({"e": {}, "l": [], "s": [[], {}]}) == (
        "        e: {}\n        l: []\n        s:\n            - []\n            - {}\n"
    )


# Rule 3: the document --------------------------------------------------------------------------


def test_document_has_no_markers_and_ends_with_one_newline() -> None:
    text = args_yaml("été", "日本")
    assert not text.startswith("---")
    assert "..." not in text
    assert text.endswith("- 日本\n")
    assert not text.endswith("\n\n")
    assert "- été\n" in text  # non-ASCII BMP characters are written as they are


# Rule 4: key order -----------------------------------------------------------------------------


def test_struct_keys_follow_upstream_field_order() -> None:
    schematic = Schematic(
        overlay=Overlay(image="img", name="nm", options={"k": "v"}),
        customization=Customization(
            embedded_machine_configuration="cfg",
            extra_kernel_args=("arg",),
            meta=(MetaValue(1, "m"),),
            system_extensions=SystemExtensions(("ext",)),
            bootloader=Bootloader.GRUB,
            secureboot=SecureBoot(enroll_keys="off", include_well_known_certificates=True),
            disk_image=DiskImage(4096),
            kernel_modules=("zfs",),
        ),
    )
    assert canonical_bytes(schematic).decode() == (
        "overlay:\n"
        "    image: img\n"
        "    name: nm\n"
        "    options:\n"
        "        k: v\n"
        "customization:\n"
        "    embeddedMachineConfiguration: cfg\n"
        "    extraKernelArgs:\n"
        "        - arg\n"
        "    meta:\n"
        "        - key: 1\n"
        "          value: m\n"
        "    systemExtensions:\n"
        "        officialExtensions:\n"
        "            - ext\n"
        "    bootloader: grub\n"
        "    secureboot:\n"
        "        enrollKeys: 'off'\n"
        "        includeWellKnownCertificates: true\n"
        "    diskImage:\n"
        "        sectorSize: 4096\n"
        "    kernelModules:\n"
        "        - zfs\n"
    )


def test_options_keys_use_go_yamls_natural_order() -> None:
    keys = ["zeta", "nul", "nested", "emptylist", "empty", "configTxtAppend", "alpha", "a10"]
    keys += ["a2", "Beta"]
    text = options_yaml(dict.fromkeys(keys, 1))
    written = [line.split(":")[0].strip() for line in text.splitlines()]
    assert written == [
        "Beta",
        "a2",
        "a10",
        "alpha",
        "configTxtAppend",
        "empty",
        "emptylist",
        "nested",
        "nul",
        "zeta",
    ]


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ("B", "a"),  # letters compare by code point: upper case first
        ("a2", "a10"),  # digit runs compare as numbers
        ("a9", "a10"),
        ("a", "ab"),  # a shorter prefix first
        ("a1", "ab"),  # digits before letters
        ("a_b", "a1"),
        ("a_b", "ab"),
        ("x1y", "x01y"),  # the same number: the shorter run first
        ("v1.2", "v1.10"),
    ],
)
def test_natural_order(smaller: str, larger: str) -> None:
    assert natural_less(smaller, larger)
    assert not natural_less(larger, smaller)


# Rule 5: scalar styles -------------------------------------------------------------------------

PLAIN = ["noapic", "console=ttyS0,115200n8", "-x", "?x", ":x", "x,y", "a b", "--", "=", "it's"]
PLAIN += ['quote"d', "x='y'", "été", "a:b", "a#b", "x]", "talos.platform=metal", "a%", "1.2.3"]


@pytest.mark.parametrize("value", PLAIN)
def test_plain_when_it_reads_back_as_the_same_string(value: str) -> None:
    assert one_arg(value) == value


DOUBLE = ["true", "True", "FALSE", "null", "NULL", "~", "", "1", "0", "-1", "+1", "1.5", "1."]
DOUBLE += [".5", "1e3", "0x10", "0o17", "0b101", "012", "08", "1_000", ".inf", "-.inf", ".NaN"]
DOUBLE += ["2001-01-01", "2001-1-1", "2001-12-14t21:59:43.10-05:00", "2001-01-01 10:00:00", "123"]
DOUBLE += ["-0", "18446744073709551615"]


@pytest.mark.parametrize("value", DOUBLE)
def test_double_quoted_when_it_would_read_back_as_another_type(value: str) -> None:
    assert one_arg(value) == f'"{value}"'


@pytest.mark.parametrize(
    "value",
    # strings that look like types only to YAML 1.1, or not at all, stay plain
    ["2001-13-01", "2001-02-30", "1e400", "0x", "+", "-", "yes-no", "1:2:x", ".5_0", "0o8"],
)
def test_not_a_type_under_go_yamls_rules(value: str) -> None:
    assert one_arg(value) in (value, f"'{value}'")


SINGLE = ["yes", "No", "ON", "off", "y", "N", "1:2", "12:30:45", "-1:30", "<<"]
SINGLE += ["- x", "*x", "&x", "!x", "%x", "@x", "`x", "{x", "[x", "]x", ",x", ">x", "|x", "#x"]
SINGLE += ["'x", '"x', "-", "?", ":", "---", "...", "---x", "a: b", "a #b", "x:", " x", "x "]
SINGLE += ['{"externalIPs":["1.2.3.4"]}', "{}", "[]"]


@pytest.mark.parametrize("value", SINGLE)
def test_single_quoted_for_yaml11_words_and_indicators(value: str) -> None:
    assert one_arg(value) == "'" + value.replace("'", "''") + "'"


def test_a_quote_inside_single_quotes_is_doubled() -> None:
    assert one_arg("'it's'") == "'''it''s'''"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("x\ty", '"x\\ty"'),
        ("ctl\x01", '"ctl\\x01"'),
        ("a\rb", '"a\\rb"'),
        ("bell\x07", '"bell\\a"'),
        ("esc\x1b", '"esc\\e"'),
        ("del\x7f", '"del\\x7F"'),
        ("nel\x85", '"nel\\N"'),
        ("\ufeffbom", '"\\uFEFF\\x62\\x6F\\x6D"'),  # libyaml escapes everything after a BOM
        ("nonchar\ufffe", '"nonchar\\uFFFE"'),
        ("\n", '"\\n"'),
        ("x ", "'x '"),
        ('tab\t and quote "', '"tab\\t and quote \\""'),
        ("back\\slash\t", '"back\\\\slash\\t"'),
    ],
)
def test_double_quoted_with_escapes_for_non_printable_characters(value: str, written: str) -> None:
    assert one_arg(value) == written


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("😀", '"\\U0001F600"'),
        ("go 🚀 now", '"go \\U0001F680 now"'),
        ("𝄞", '"\\U0001D11E"'),
        ("é😀é", '"é\\U0001F600é"'),
    ],
)
def test_characters_outside_the_bmp_are_escaped(value: str, written: str) -> None:
    assert one_arg(value) == written


def machine_config(value: str) -> str:
    schematic = Schematic(customization=Customization(embedded_machine_configuration=value))
    text = canonical_bytes(schematic).decode()
    prefix = "customization:\n    embeddedMachineConfiguration: "
    assert text.startswith(prefix)
    return text[len(prefix) :]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a\nb", "|-\n        a\n        b\n"),
        ("a\nb\n", "|\n        a\n        b\n"),
        ("a\nb\n\n", "|+\n        a\n        b\n\n"),
        ("a\n\n\n", "|+\n        a\n\n\n"),
        ("\nb", "|-\n\n        b\n"),
        ("a\n\nb", "|-\n        a\n\n        b\n"),
        ("  indented\nb\n", "|4\n          indented\n        b\n"),
        (" x\n", "|4\n         x\n"),
        (" x\ny", "|4-\n         x\n        y\n"),
        (" x\n\n", "|4+\n         x\n\n"),
        ("a\tb\n\tc\n", "|\n        a\tb\n        \tc\n"),
        ("version: v1alpha1\nmachine:\n  type: worker\n---\nkind: X\n", None),
    ],
)
def test_multi_line_strings_are_literal_blocks(value: str, written: str | None) -> None:
    expected = written or "|\n" + "".join(f"        {line}\n" for line in value.splitlines())
    assert machine_config(value) == expected


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a \nb", '"a \\nb"\n'),  # trailing space on a line
        ("a\r\nb", '"a\\r\\nb"\n'),  # carriage return
        ("a\nb ", '"a\\nb "\n'),  # trailing space at the end
        ("\n", '"\\n"\n'),  # only a newline
        ("\n\n", '"\\n\\n"\n'),  # only blank
        (" \n", '" \\n"\n'),
        ("😀\nx", '"\\U0001F600\\nx"\n'),  # not printable: no block
        ("x\x85\ny", '"x\\N\\ny"\n'),
    ],
)
def test_multi_line_strings_that_cannot_be_blocks_are_double_quoted(
    value: str, written: str
) -> None:
    assert machine_config(value) == written


def test_literal_block_in_a_sequence_is_indented_past_the_dash() -> None:
    assert args_yaml("a\nb", "c") == (
        "customization:\n    extraKernelArgs:\n"
        "        - |-\n          a\n          b\n        - c\n"
    )


def test_literal_block_after_keep_chomping_is_followed_directly_by_the_next_key() -> None:
    schematic = Schematic(
        customization=Customization(
            embedded_machine_configuration="a\n\n", extra_kernel_args=("x",)
        )
    )
    assert canonical_bytes(schematic) == (
        b"customization:\n    embeddedMachineConfiguration: |+\n        a\n\n"
        b"    extraKernelArgs:\n        - x\n"
    )


def test_no_line_is_ever_wrapped() -> None:
    long = " ".join(["word"] * 100)
    assert one_arg(long) == long
    assert one_arg(long + ":") == f"'{long}:'"
    assert one_arg(long + "\t") == '"' + long + '\\t"'


def test_option_keys_are_quoted_by_the_same_rules() -> None:
    assert options_yaml({"1": "a", "yes": "b", "a: b": "c", "": "d", "x\ty": "e"}) == (
        '        "": d\n'
        '        "1": a\n'
        "        'a: b': c\n"
        '        "x\\ty": e\n'
        "        'yes': b\n"
    )


def test_long_and_multi_line_option_keys_use_explicit_key_syntax() -> None:
    long_key = "k" * 129
    assert options_yaml({long_key: 1, "k" * 128: 2, "two\nlines": 3}) == (
        f"        {'k' * 128}: 2\n"
        f"        ? {long_key}\n"
        "        : 1\n"
        "        ? |-\n"
        "            two\n"
        "            lines\n"
        "        : 3\n"
    )


# Rule 6: integers are decimal ------------------------------------------------------------------


def test_integers_are_written_in_decimal() -> None:
    parsed = parse_schematic(
        b"customization:\n  meta: [{key: 0x0a, value: v}, {key: 0o17}, {key: 012}]\n"
        b"  diskImage: {sectorSize: 0x1000}\n"
    )
    text = canonical_bytes(parsed).decode()
    assert "- key: 10\n" in text
    assert "- key: 15\n" in text
    assert text.count("- key: 10\n") == 2  # 012 is octal, as in Go
    assert "sectorSize: 4096\n" in text


# Rule 7: overlay.options is typed, so it is normalised -----------------------------------------

OPTION_NORMALISATION = [
    ("1.0", "1"),
    ("1e10", "1e+10"),
    ("1.5e-7", "1.5e-07"),
    ("0.0001", "0.0001"),
    ("0.00001", "1e-05"),
    ("123456.0", "123456"),
    ("1234567.0", "1.234567e+06"),
    ("0x1F", "31"),
    ("0o17", "15"),
    ("012", "10"),
    ("1_000", "1000"),
    ("+12", "12"),
    ("-0", "-0"),
    ("08", "8"),
    (".5", "0.5"),
    ("~", "null"),
    ("null", "null"),
    ("", "null"),
    ("True", "true"),
    ("2001-01-01", "2001-01-01T00:00:00Z"),
    ("2001-1-2 3:4:5", "2001-01-02T03:04:05Z"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14T21:59:43.1-05:00"),
    ("2001-12-14T21:59:43.123456789123Z", "2001-12-14T21:59:43.123456789Z"),
    ("2001-12-14T21:59:43+00:00", "2001-12-14T21:59:43Z"),
    ("!!binary aGVsbG8=", "hello"),
    ("!!str 12", '"12"'),
    ("!!float 12", "12"),
    ("yes", "'yes'"),
    ("'1'", '"1"'),
    (".inf", ".inf"),
    ("-.Inf", "-.inf"),
    (".NaN", ".nan"),
    ("1e400", "1e400"),
    ("18446744073709551615", "18446744073709551615"),
    ("18446744073709551616", "1.8446744073709552e+19"),
]


@pytest.mark.parametrize(("written", "normalised"), OPTION_NORMALISATION)
def test_option_values_take_a_go_round_trip(written: str, normalised: str) -> None:
    parsed = parse_schematic(f"overlay:\n  options:\n    v: {written}\n".encode())
    assert options_yaml(dict(parsed.overlay.options)) == f"        v: {normalised}\n"


# Rule 8: omission ------------------------------------------------------------------------------


def test_zero_fields_are_left_out_but_customization_never_is() -> None:
    schematic = Schematic(
        customization=Customization(
            bootloader=Bootloader.NONE,
            secureboot=SecureBoot(),
            disk_image=DiskImage(0),
            system_extensions=SystemExtensions(()),
        )
    )
    assert canonical_bytes(schematic) == b"customization: {}\n"


def test_overlay_with_any_field_writes_image_and_name_even_when_empty() -> None:
    only_options = Schematic(overlay=Overlay(options={"a": 1}))
    assert canonical_bytes(only_options) == (
        b'overlay:\n    image: ""\n    name: ""\n    options:\n        a: 1\ncustomization: {}\n'
    )


def test_struct_with_one_nonzero_field_is_written() -> None:
    schematic = Schematic(customization=Customization(secureboot=SecureBoot(enroll_keys="force")))
    assert canonical_bytes(schematic) == (
        b"customization:\n    secureboot:\n        enrollKeys: force\n"
    )


def test_kernel_modules_come_last_and_only_when_present() -> None:
    with_modules = Schematic(
        customization=Customization(extra_kernel_args=("a",), kernel_modules=("zfs", "e1000e"))
    )
    assert canonical_bytes(with_modules).endswith(
        b"    kernelModules:\n        - zfs\n        - e1000e\n"
    )
    without = Schematic(customization=Customization(extra_kernel_args=("a",)))
    assert b"kernelModules" not in canonical_bytes(without)
