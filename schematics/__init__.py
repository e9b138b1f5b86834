"""Schematics: the model, the strict parser, the go-yaml-compatible canonical form and the ID.

Pure code: no I/O, no Flask, no Celery, nothing else of ours.

    schematic = parse_schematic(body)       # raises SchematicError naming the problem
    canonical_bytes(schematic)              # upstream's exact bytes
    schematic_id(schematic)                 # sha256 of those bytes, as upstream
"""

from schematics.canonical import canonical_bytes, schematic_id
from schematics.errors import SchematicError
from schematics.model import (
    Bootloader,
    Customization,
    DiskImage,
    MetaValue,
    Overlay,
    Schematic,
    SecureBoot,
    SystemExtensions,
)
from schematics.parse import MAX_SCHEMATIC_BYTES, parse_schematic

__all__ = [
    "MAX_SCHEMATIC_BYTES",
    "Bootloader",
    "Customization",
    "DiskImage",
    "MetaValue",
    "Overlay",
    "Schematic",
    "SchematicError",
    "SecureBoot",
    "SystemExtensions",
    "canonical_bytes",
    "parse_schematic",
    "schematic_id",
]
