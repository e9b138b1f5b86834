"""`image-factory schematic id|canonical [FILE|-]`: schematic IDs and canonical forms, offline."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from schematics import (
    MAX_SCHEMATIC_BYTES,
    Schematic,
    SchematicError,
    canonical_bytes,
    parse_schematic,
    schematic_id,
)

INVALID_INPUT = 2


@click.group()
def schematic() -> None:
    """Compute schematic IDs and canonical forms without a server."""


@schematic.command("id")
@click.argument("source", type=click.File("rb"), default="-")
def print_id(source: BinaryIO) -> None:
    """Print the ID of the schematic in SOURCE (a file, or - for standard input)."""
    click.echo(schematic_id(_read(source)))


@schematic.command("canonical")
@click.argument("source", type=click.File("rb"), default="-")
def print_canonical(source: BinaryIO) -> None:
    """Write the canonical bytes of the schematic in SOURCE, exactly (they hash to the ID)."""
    # Raw bytes on stdout: the canonical form must not pass through text encoding.
    sys.stdout.buffer.write(canonical_bytes(_read(source)))
    sys.stdout.buffer.flush()


def _read(source: BinaryIO) -> Schematic:
    # One byte over the limit is enough for the parser to refuse an oversized input.
    data = source.read(MAX_SCHEMATIC_BYTES + 1)
    try:
        # IDs of owner schematics as upstream computes them (nothing is stored here).
        return parse_schematic(data, allow_owner=True)
    except SchematicError as error:
        click.echo(f"error: {error}", err=True)
        raise SystemExit(INVALID_INPUT) from None
