"""`/extensions.yaml`, the layer list of an initramfs (Talos `pkg/machinery/extensions`).

Written in the go-yaml encoder's block style with 4-space indents, which the reference OS
reads with a small awk parser: plain scalars where YAML would read them back as the same
string, single quotes otherwise, literal blocks for multi-line text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml

from extensions.manifest import Manifest

_PLAIN = re.compile(r"^[A-Za-z0-9_./+(-][A-Za-z0-9 _./+()=,:\[\]~@-]*$")


@dataclass(frozen=True)
class LayerEntry:
    """One layer: its image file name inside the initramfs and its extension metadata."""

    image: str
    metadata: Manifest


def _scalar(value: str) -> str:
    if value == "":
        return '""'
    plain = _PLAIN.match(value) and ": " not in value and not value.endswith((" ", ":"))
    if plain and _reads_back(value):
        return value
    if "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


def _reads_back(value: str) -> bool:
    try:
        return bool(yaml.safe_load(value) == value)
    except yaml.YAMLError:
        return False


def _block(key: str, value: str, indent: int) -> list[str]:
    """`key: |` plus the indented lines, or a quoted scalar when a block cannot keep it."""
    lines = value.split("\n")
    keep_block = not value.startswith((" ", "\n")) and all(
        line == "" or not line.endswith(" ") for line in lines
    )
    if not keep_block:
        return [" " * indent + f"{key}: {json.dumps(value, ensure_ascii=False)}"]
    chomp = "" if value.endswith("\n") else "-"
    if value.endswith("\n"):
        lines = lines[:-1]
    body = [(" " * (indent + 4) + line) if line else "" for line in lines]
    return [" " * indent + f"{key}: |{chomp}", *body]


def render_extensions_yaml(layers: list[LayerEntry]) -> bytes:
    out = ["layers:"]
    for layer in layers:
        meta = layer.metadata
        out.append(f"    - image: {_scalar(layer.image)}")
        out.append("      metadata:")
        out.append(f"        name: {_scalar(meta.name)}")
        out.append(f"        version: {_scalar(meta.version)}")
        out.append(f"        author: {_scalar(meta.author)}")
        out.append(f"        description: {_scalar(meta.description)}")
        out.append("        compatibility:")
        out.append("            talos:")
        out.append(f"                version: {_scalar(meta.compatibility)}")
        if meta.extra_info:
            if "\n" in meta.extra_info:
                out += _block("extraInfo", meta.extra_info, 8)
            else:
                out.append(f"        extraInfo: {_scalar(meta.extra_info)}")
    return ("\n".join(out) + "\n").encode()
