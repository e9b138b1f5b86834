from __future__ import annotations

import pytest

from extensions.errors import ExtensionError
from extensions.manifest import Manifest, parse_manifest, render_manifest
from tests.extensions.builders import MANIFEST


def test_parses_talos_manifest() -> None:
    m = parse_manifest(MANIFEST)
    assert m == Manifest(
        name="hello",
        version="1.0.0",
        author="Test Author",
        description="A test extension",
        compatibility=">= v1.0.0",
    )


def test_scalars_are_kept_as_text() -> None:
    m = parse_manifest(b"version: v1alpha1\nmetadata:\n  name: n\n  version: 1.10\n")
    assert m.version == "1.10"  # not the float 1.1


def test_render_round_trips_multiline_extra_info() -> None:
    m = Manifest(
        "schematic", "a" * 64, "Image Factory (http://x)", "d", ">= 1.0.0", "a: 1\nb:\n  - c\n"
    )
    text = render_manifest(m)
    assert b"extraInfo: |" in text
    assert parse_manifest(text) == m
    assert render_manifest(m) == text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "manifest.yaml: empty"),
        (b"- a\n", "manifest.yaml: expected a mapping"),
        (b"version: v1alpha2\nmetadata: {name: a, version: '1'}", 'unsupported "v1alpha2"'),
        (b"metadata: {name: a, version: '1'}", "manifest.yaml: version: required"),
        (b"version: v1alpha1\nmetadata: {version: '1'}", "metadata.name: required"),
        (b"version: v1alpha1\nmetadata: {name: a}", "metadata.version: required"),
        (b"version: v1alpha1\nmetadata: {name: a, version: '1', x: 1}", 'unknown field "x"'),
        (b"version: v1alpha1\nkind: x\nmetadata: {name: a, version: '1'}", 'unknown field "kind"'),
        (b"version: v1alpha1\nversion: v1alpha1\n", 'duplicate key "version"'),
        (
            b"version: v1alpha1\nmetadata: {name: [a], version: '1'}",
            "metadata.name: expected a string",
        ),
        (b"version: v1alpha1\nmetadata: {name: ../x, version: '1'}", "metadata.name"),
        (b"version: v1alpha1\nmetadata: {name: a, version: 'has space'}", "metadata.version"),
        (b"a: &x [1]\nb: *x\n", "anchors and aliases are not allowed"),
        (b"version: !!python/object:os.system v1alpha1\n", "explicit YAML tags are not allowed"),
        (b"version: [unclosed\n", "invalid YAML"),
        # The whole stream is checked before any of it is composed or constructed.
        (b"a: 1\n---\nb: &x 2\n", "anchors and aliases are not allowed"),
        (b"version: v1alpha1\nversion: !!str v1\n", "explicit YAML tags are not allowed"),
        (b"a: 1\n---\nb: 2\n", "expected a single document"),
        (b"\xff\xfe", "not valid UTF-8"),
        (
            b"version: v1alpha1\nmetadata:\n  name: a\n  version: '1'\n"
            b"  compatibility: {talos: {version: '>= banana'}}\n",
            "metadata.compatibility.talos.version: invalid compatibility range",
        ),
        (
            b"version: v1alpha1\nmetadata:\n  name: a\n  version: '1'\n"
            b"  compatibility: {talos: {version: '>= 1.0.0', x: 1}}\n",
            'unknown field "x"',
        ),
    ],
)
def test_rejects(body: bytes, message: str) -> None:
    with pytest.raises(ExtensionError) as info:
        parse_manifest(body)
    assert message in str(info.value)


def test_size_limit() -> None:
    with pytest.raises(ExtensionError, match="larger than 100 bytes"):
        parse_manifest(MANIFEST, max_bytes=100)
