"""The node tree, and agreement between libyaml's event source and PyYAML's pure Python one."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from schematics import SchematicError
from schematics.compose import Alias, Mapping, Node, Scalar, Sequence, compose, decode_text
from tests.schematics import bad_inputs


def shape(node: Node | None) -> Any:
    """A comparable picture of a tree (nodes compare by identity)."""
    if node is None:
        return None
    if isinstance(node, Scalar):
        return ("scalar", node.line, node.value, node.tag, node.style)
    if isinstance(node, Sequence):
        return ("seq", node.line, [shape(item) for item in node.items])
    if isinstance(node, Mapping):
        return ("map", node.line, [(shape(k), shape(v)) for k, v in node.pairs])
    assert isinstance(node, Alias)
    return ("alias", node.line, node.name)  # not the target: alias bombs would explode here


def test_libyaml_is_available() -> None:
    # The fast (and go-yaml-like) event source; PyYAML's wheels ship it.
    assert yaml.__with_libyaml__


def test_tree_keeps_text_style_tags_and_lines() -> None:
    text = "a: &x [1, 'two', !!int 3, ! four]\nb: *x\nc: |\n  block\n"
    assert shape(compose(text)) == (
        "map",
        1,
        [
            (
                ("scalar", 1, "a", "", ""),
                (
                    "seq",
                    1,
                    [
                        ("scalar", 1, "1", "", ""),
                        ("scalar", 1, "two", "", "'"),
                        ("scalar", 1, "3", "!!int", ""),
                        ("scalar", 1, "four", "!", ""),
                    ],
                ),
            ),
            (("scalar", 2, "b", "", ""), ("alias", 2, "x")),
            (("scalar", 3, "c", "", ""), ("scalar", 3, "block\n", "", "|")),
        ],
    )


def test_aliases_point_at_their_anchored_node() -> None:
    root = compose("a: &x [1]\nb: *x\n")
    assert isinstance(root, Mapping)
    alias = root.pairs[1][1]
    assert isinstance(alias, Alias)
    assert alias.target is root.pairs[0][1]


def test_no_document_is_none_and_only_the_first_document_is_read() -> None:
    assert compose("") is None
    assert compose("# only a comment\n") is None
    assert shape(compose("a\n---\n[unclosed\n")) == ("scalar", 1, "a", "", "")


CORPUS = [
    "customization: {}",
    '{\n\t"customization": {\n\t\t"extraKernelArgs": ["a",\t"b"]\n\t}\n}',
    "a: b\tc\t\nd: e\n",
    "customization:\r\n  extraKernelArgs:\r\n    - noapic # comment\r\n",
    "a: >\n  folded\n  text\n\nb: |+\n  kept\n\n",
    "? [complex]\n: key\n",
    "a: 'it''s'\nb: \"\\u00e9\\t\\x41\"\n",
    "%YAML 1.1\n---\na: 1\n...\n",
    "a:\n- b\n- c\n",
    "'a': &anchor {b: [c, d]}\ne: *anchor\n",
]


@pytest.mark.parametrize("text", CORPUS)
def test_both_event_sources_build_the_same_tree(text: str) -> None:
    assert shape(compose(text, pure_python=True)) == shape(compose(text, pure_python=False))


@pytest.mark.parametrize("case", bad_inputs.ALL, ids=lambda case: case.name)
def test_both_event_sources_agree_on_bad_input(case: bad_inputs.BadInput) -> None:
    outcomes = []
    for pure_python in (True, False):
        try:
            text = decode_text(case.data)
            outcomes.append(("tree", shape(compose(text, pure_python=pure_python))))
        except SchematicError as error:
            outcomes.append(("error", str(error).split(":")[0]))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("pure_python", [True, False])
def test_tabs_may_not_indent_blocks(pure_python: bool) -> None:
    with pytest.raises(SchematicError, match=r"yaml: line 2: .*"):
        compose("a:\n\t- b\n", pure_python=pure_python)
