"""The `image-factory` command line."""

from __future__ import annotations

import logging

import click

from factory.commands.build import build
from factory.commands.extension import extension
from factory.commands.prepare import prepare
from factory.commands.release import release
from factory.commands.schematic import schematic
from factory.commands.serve import serve
from factory.commands.worker import worker


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages (every tool command line).")
def main(verbose: bool) -> None:
    """Image Factory: custom bootable OS images from YAML schematics."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(serve)
main.add_command(release)
main.add_command(extension)
main.add_command(schematic)
main.add_command(build)
main.add_command(worker)
main.add_command(prepare)
