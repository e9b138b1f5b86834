"""The one error the schematics package raises."""

from __future__ import annotations


class SchematicError(ValueError):
    """The input is not a valid schematic; `str(error)` says what is wrong and where."""
