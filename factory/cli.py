"""The `image-factory` command line."""

from __future__ import annotations

import logging

import click

from factory.commands.audit import audit
from factory.commands.build import build
from factory.commands.export import export, import_bundle
from factory.commands.extension import extension
from factory.commands.prepare import prepare
from factory.commands.release import release
from factory.commands.schematic import schematic
from factory.commands.serve import serve
from factory.commands.token import token
from factory.commands.verify import verify
from factory.commands.worker import worker
from workers.assembly.run import tool_timeout
from workers.settings import Settings


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages (every tool command line).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Image Factory: custom bootable OS images from YAML schematics."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = Settings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    # Every tool any command runs (release builds, first-start steps, the processes it forks)
    # stops after IMAGE_FACTORY_TOOL_TIMEOUT; builds set it again for their own context.
    ctx.with_resource(tool_timeout(settings.tool_timeout))


main.add_command(serve)
main.add_command(release)
main.add_command(extension)
main.add_command(schematic)
main.add_command(build)
main.add_command(worker)
main.add_command(prepare)
main.add_command(token)
main.add_command(audit)
main.add_command(export)
main.add_command(import_bundle)
main.add_command(verify)
