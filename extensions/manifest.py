"""The Talos extension `manifest.yaml` (`pkg/machinery/extensions/metadata.go`), parsed strictly.

    version: v1alpha1
    metadata:
      name: hello
      version: 1.0.0
      author: Image Factory
      description: ...
      compatibility:
        talos:
          version: ">= v1.0.0"
      extraInfo: ...          # optional free text

Unknown keys, duplicate keys, wrong types, anchors/aliases/tags → ExtensionError naming the
field. `name` and `version` are restricted to characters safe in store keys, catalog names and
OCI tags; the compatibility range must parse (see `compat`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from extensions.compat import parse_range
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS
from extensions.strict_yaml import expect_mapping, expect_string, load_strict_yaml

MANIFEST_NAME = "manifest.yaml"
MANIFEST_VERSION = "v1alpha1"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
MAX_AUTHOR = 1024
MAX_DESCRIPTION = 16 * 1024


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    author: str = ""
    description: str = ""
    compatibility: str = ""
    extra_info: str = ""


def check_name(value: str, where: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ExtensionError(
            f'{where}: "{value}" must be 1-128 characters of letters, digits, ".", "_", "-", '
            "starting with a letter or digit"
        )
    return value


def check_version(value: str, where: str) -> str:
    if not VERSION_PATTERN.match(value):
        raise ExtensionError(
            f'{where}: "{value}" must be 1-128 characters of letters, digits, ".", "_", "+", "-"'
        )
    return value


def parse_manifest(data: bytes, max_bytes: int = DEFAULT_LIMITS.max_manifest_bytes) -> Manifest:
    """Parse and check a `manifest.yaml`; ExtensionError names the offending field."""
    where = MANIFEST_NAME
    doc = load_strict_yaml(data, where, max_bytes)
    if doc is None or doc == "":
        raise ExtensionError(f"{where}: empty")
    top = expect_mapping(doc, where, {"version", "metadata"})
    fmt = expect_string(top.get("version"), f"{where}: version", 64, required=True)
    if fmt != MANIFEST_VERSION:
        raise ExtensionError(
            f'{where}: version: unsupported "{fmt}", expected "{MANIFEST_VERSION}"'
        )
    meta = expect_mapping(
        top.get("metadata"),
        f"{where}: metadata",
        {"name", "version", "author", "description", "compatibility", "extraInfo"},
    )
    compat = expect_mapping(
        meta.get("compatibility"), f"{where}: metadata.compatibility", {"talos"}
    )
    talos = expect_mapping(
        compat.get("talos"), f"{where}: metadata.compatibility.talos", {"version"}
    )
    constraint = expect_string(
        talos.get("version"), f"{where}: metadata.compatibility.talos.version", 1024
    )
    try:
        parse_range(constraint)
    except ExtensionError as exc:
        raise ExtensionError(f"{where}: metadata.compatibility.talos.version: {exc}") from None
    return Manifest(
        name=check_name(
            expect_string(meta.get("name"), f"{where}: metadata.name", 128, required=True),
            f"{where}: metadata.name",
        ),
        version=check_version(
            expect_string(meta.get("version"), f"{where}: metadata.version", 128, required=True),
            f"{where}: metadata.version",
        ),
        author=expect_string(meta.get("author"), f"{where}: metadata.author", MAX_AUTHOR),
        description=expect_string(
            meta.get("description"), f"{where}: metadata.description", MAX_DESCRIPTION
        ),
        compatibility=constraint,
        extra_info=expect_string(meta.get("extraInfo"), f"{where}: metadata.extraInfo", max_bytes),
    )


class _BlockStringDumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (PyYAML falls back to quoting when it must)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStringDumper.add_representer(str, _represent_str)


def render_manifest(manifest: Manifest) -> bytes:
    """Deterministic YAML for `manifest` that `parse_manifest` reads back unchanged."""
    metadata: dict[str, Any] = {
        "name": manifest.name,
        "version": manifest.version,
        "author": manifest.author,
        "description": manifest.description,
        "compatibility": {"talos": {"version": manifest.compatibility}},
    }
    if manifest.extra_info:
        metadata["extraInfo"] = manifest.extra_info
    doc = {"version": MANIFEST_VERSION, "metadata": metadata}
    text = yaml.dump(
        doc,
        Dumper=_BlockStringDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )
    return text.encode("utf-8")
