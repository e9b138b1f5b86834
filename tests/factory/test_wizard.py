"""The web form's state: query in, query out, which step comes next, the schematic text."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode

import pytest

from factory.wizard import Choices, options_message, split_kernel_args
from schematics import SchematicError, canonical_bytes, parse_schematic


def _choices(query: str) -> Choices:
    return Choices.from_query(parse_qs(query, keep_blank_values=True))


COMPLETE = (
    "target=metal&version=v1.0.0&arch=amd64&secureboot=true"
    "&extensions=factory%2Fhello&extensions=factory%2Fdummy-module&modules=zram"
    "&cmdline=console%3DttyS0++factory.poweroff%3D1&bootloader=grub&cmdline-set=true"
)


def test_query_round_trips_in_step_order_with_sorted_lists() -> None:
    choices = _choices(COMPLETE)

    assert choices.extensions == ("factory/dummy-module", "factory/hello")
    assert choices.cmdline == "console=ttyS0 factory.poweroff=1"
    assert urlencode(choices.query()) == (
        "target=metal&version=v1.0.0&arch=amd64&secureboot=true"
        "&extensions=factory%2Fdummy-module&extensions=factory%2Fhello&modules=zram"
        "&cmdline=console%3DttyS0+factory.poweroff%3D1&bootloader=grub&cmdline-set=true"
    )
    assert _choices(urlencode(choices.query())) == choices


def test_fields_of_other_targets_are_dropped() -> None:
    choices = _choices("target=metal&platform=aws&board=testboard&overlay-options=a:+b")

    assert choices.query() == [("target", "metal")]


def test_secureboot_is_kept_only_where_the_platform_has_it() -> None:
    wanted = ("secureboot", "true")
    assert wanted in _choices("target=cloud&platform=azure&secureboot=true").query()
    assert wanted not in _choices("target=cloud&platform=aws&secureboot=true").query()


@pytest.mark.parametrize(
    ("query", "step"),
    [
        ("", "target"),
        ("target=metal", "version"),
        ("target=cloud&version=v1.0.0", "platform"),
        ("target=sbc&version=v1.0.0", "board"),
        ("target=metal&version=v1.0.0", "arch"),
        ("target=metal&version=v1.0.0&arch=amd64", "extensions"),
        ("target=metal&version=v1.0.0&arch=amd64&extensions=-", "modules"),
        ("target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=-", "cmdline"),
        ("target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=-&cmdline-set=true", "final"),
        # A pinned schematic is not asked about its content again.
        (f"schematic-id={'a' * 64}&target=metal&version=v1.0.0&arch=amd64", "final"),
    ],
)
def test_the_first_open_step_is_shown(query: str, step: str) -> None:
    assert _choices(query).first_open_step() == step


def test_none_chosen_marks_a_list_step_done() -> None:
    choices = _choices("extensions=-&modules=-")

    assert choices.extensions == ()
    assert choices.modules == ()
    assert ("extensions", "-") in choices.query()


def test_step_after_never_skips_an_open_step() -> None:
    choices = _choices("target=metal&version=v1.0.0&arch=amd64&cmdline-set=true")

    assert choices.step_after("arch") == "extensions"
    assert choices.step_after("extensions") == "extensions"  # still open: nothing submitted
    assert _choices(COMPLETE).step_after("arch") == "extensions"
    assert _choices(COMPLETE).step_after("cmdline") == "final"
    assert _choices(COMPLETE).step_before("target") is None
    assert _choices(COMPLETE).step_before("extensions") == "arch"


def test_schematic_text_is_what_the_parser_reads() -> None:
    schematic = parse_schematic(_choices(COMPLETE).schematic_text(""))

    assert canonical_bytes(schematic).decode() == (
        "customization:\n"
        "    extraKernelArgs:\n"
        "        - console=ttyS0\n"
        "        - factory.poweroff=1\n"
        "    systemExtensions:\n"
        "        officialExtensions:\n"
        "            - factory/dummy-module\n"
        "            - factory/hello\n"
        "    bootloader: grub\n"
        "    kernelModules:\n"
        "        - zram\n"
    )


def test_board_overlay_options_keep_go_yaml_meaning() -> None:
    options = "configTxt: |\n  dtparam=audio=on\nenabled: yes\n"
    choices = _choices(
        "target=sbc&board=testboard&cmdline-set=true&overlay-options=" + quote(options)
    )

    schematic = parse_schematic(choices.schematic_text("factory/testboard"))

    assert schematic.overlay.name == "testboard"
    assert schematic.overlay.image == "factory/testboard"
    assert dict(schematic.overlay.options) == {
        "configTxt": "dtparam=audio=on\n",
        "enabled": "yes",  # a string, as go-yaml decodes it into `any`
    }


def test_option_errors_count_lines_in_the_users_text() -> None:
    choices = _choices("target=sbc&board=b&overlay-options=a: 1%0Ab: [2")

    with pytest.raises(SchematicError) as error:
        parse_schematic(choices.schematic_text("x/b"))

    assert str(error.value).startswith("yaml: line 5:")
    assert options_message(str(error.value)).startswith("yaml: line 3:")


PINNED = Choices(target="metal", version="v1.0.0", arch="amd64", schematic_id="ab" * 32)
BOARD_IMAGE = "factory/testboard"


@pytest.mark.parametrize(
    "body",
    [
        b"customization: {}\n",
        b"customization:\n  extraKernelArgs: [console=ttyS0, 'quoted=\"x\"']\n"
        b"  systemExtensions:\n    officialExtensions: [factory/dummy-module, factory/hello]\n"
        b"  kernelModules: [dummy, zram]\n  bootloader: dual-boot\n",
        b"overlay:\n  image: factory/testboard\n  name: testboard\n",
        b"overlay:\n  image: factory/testboard\n  name: testboard\n  options:\n"
        b"    configTxt: |\n      gpu_mem=64\n\n      dtoverlay=x\n"
        b"    nested: {list: [1, 'two', {three: 3}], 'yes': yes, empty: ''}\n"
        b"    number: 0x10\ncustomization:\n  extraKernelArgs: [a=1]\n  bootloader: sd-boot\n",
    ],
    ids=["empty", "everything-the-steps-ask", "board", "board-with-options"],
)
def test_an_edit_copy_left_unchanged_makes_the_same_schematic(body: bytes) -> None:
    original = parse_schematic(body)
    copy = PINNED.pin(original).edit_copy(original)

    assert copy is not None
    assert not copy.pinned
    assert copy.first_open_step() == "final"  # every step filled in
    assert _choices(urlencode(copy.query())) == copy  # and it survives the URL
    again = parse_schematic(copy.schematic_text(BOARD_IMAGE))
    assert canonical_bytes(again) == canonical_bytes(original)


@pytest.mark.parametrize(
    "body",
    [
        b"customization:\n  meta:\n    - {key: 10, value: x}\n",
        b"customization:\n  embeddedMachineConfiguration: 'machine: {}'\n",
        b"customization:\n  secureboot:\n    enrollKeys: force\n",
        b"customization:\n  diskImage:\n    sectorSize: 4096\n",
        b"customization:\n  extraKernelArgs: ['has space']\n",
        b"customization:\n  extraKernelArgs: ['']\n",
    ],
)
def test_no_edit_copy_when_a_step_could_not_show_a_field(body: bytes) -> None:
    assert PINNED.edit_copy(parse_schematic(body)) is None


def test_quoted_kernel_arguments_are_one_argument() -> None:
    """Finding 10: `foo="a b"` is one argument, as the kernel reads it."""
    assert split_kernel_args(' console=ttyS0  foo="a b" bar="x y"z ') == [
        "console=ttyS0",
        'foo="a b"',
        'bar="x y"z',
    ]
    query = {"target": "metal", "cmdline": 'a  foo="a  b"', "cmdline-set": "true"}
    choices = _choices(urlencode(query))
    assert choices.cmdline == 'a foo="a  b"'
    schematic = parse_schematic(choices.schematic_text(""))
    assert schematic.customization.extra_kernel_args == ("a", 'foo="a  b"')
    copy = choices.edit_copy(schematic)
    assert copy is not None
    assert copy.cmdline == 'a foo="a  b"'
