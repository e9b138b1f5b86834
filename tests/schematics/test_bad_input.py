"""Hostile and malformed input: always a SchematicError whose message names the problem."""

from __future__ import annotations

import pytest

from schematics import MAX_SCHEMATIC_BYTES, SchematicError, parse_schematic
from schematics.compose import MAX_DEPTH
from schematics.parse import ALIAS_BUDGET
from tests.schematics import bad_inputs


@pytest.mark.parametrize("case", bad_inputs.ALL, ids=lambda case: case.name)
def test_rejected_with_a_message_naming_the_problem(case: bad_inputs.BadInput) -> None:
    with pytest.raises(SchematicError) as caught:
        parse_schematic(case.data)
    message = str(caught.value)
    for fragment in case.fragments:
        assert fragment in message
    assert "Traceback" not in message


def test_ten_megabytes_are_refused_before_parsing() -> None:
    with pytest.raises(SchematicError) as caught:
        parse_schematic(b"customization: {}\n" + b"#" * 10_000_000)
    assert str(caught.value) == (
        f"schematic is 10000018 bytes, more than the limit of {MAX_SCHEMATIC_BYTES} bytes"
    )


def test_the_size_limit_is_a_parameter() -> None:
    with pytest.raises(SchematicError, match="more than the limit of 10 bytes"):
        parse_schematic(b"customization: {}", max_bytes=10)
    assert parse_schematic(b"customization: {}", max_bytes=17).customization is not None


@pytest.mark.parametrize("opening", [b"[", b"{a: ", b"- "])
def test_one_hundred_thousand_nested_levels(opening: bytes) -> None:
    closing = {b"[": b"]", b"{a: ": b"}", b"- ": b""}[opening]
    data = opening * 100_000 + b"x" + closing * 100_000  # `- - - x` nests block sequences
    with pytest.raises(SchematicError) as caught:
        parse_schematic(data)
    assert f"nesting is deeper than the limit of {MAX_DEPTH} levels" in str(caught.value)


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 3  # root mapping, overlay, options
    value = "[" * depth + "1" + "]" * depth
    schematic = parse_schematic(f"overlay:\n  options:\n    deep: {value}\n".encode())
    assert "deep" in schematic.overlay.options


def test_alias_chains_cannot_stack_nesting_past_the_limit() -> None:
    lines = ["overlay:", "  options:", "    l0: &l0 " + "[" * 40 + "1" + "]" * 40]
    for level in range(1, 5):
        lines.append(f"    l{level}: &l{level} " + "[" * 40 + f"*l{level - 1}" + "]" * 40)
    with pytest.raises(SchematicError, match="nesting is deeper than the limit"):
        parse_schematic("\n".join(lines).encode())


def test_alias_expansion_is_bounded_even_in_typed_fields() -> None:
    items = ", ".join(["x"] * 200)
    refs = ", ".join(["*a"] * 100)
    data = f"overlay:\n  options:\n    a: &a [{items}]\n    b: [{refs}]\n".encode()
    with pytest.raises(SchematicError) as caught:
        parse_schematic(data)
    assert f"more than {ALIAS_BUDGET} nodes reached through aliases" in str(caught.value)


def test_binary_that_is_not_text_is_refused_explicitly() -> None:
    with pytest.raises(SchematicError, match=r"!!binary value is not UTF-8 text"):
        parse_schematic(b"customization:\n  extraKernelArgs: [!!binary /w==]\n")


def test_non_string_keys_in_nested_options_are_refused_explicitly() -> None:
    with pytest.raises(SchematicError) as caught:
        parse_schematic(b"overlay:\n  options:\n    nested: {1: a}\n")
    assert "!!int key in a nested map; only string keys are supported" in str(caught.value)
    assert "overlay.options.nested" in str(caught.value)
