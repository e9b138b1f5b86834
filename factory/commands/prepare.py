"""`image-factory prepare`: make a deployment's store and keys ready, once.

The scaled mode's first step (docker-compose runs it as a one-shot service before the web and
worker processes start): the reference release when the store holds no release, the bundled
extensions, and the asset and SecureBoot signing keys in the data directory (unless
configured), which every web process and worker then shares. The embedded default's `serve`
does the same on its own.
"""

from __future__ import annotations

import click

from workers.assembly.run import ToolError
from workers.bootstrap import prepare_embedded_default
from workers.errors import FactoryError
from workers.secureboot import load_or_create_secureboot_key
from workers.settings import Settings
from workers.signing import load_or_create_signing_key
from workers.store import make_store


def _note(message: str) -> None:
    click.echo(f"prepare: {message}", err=True)


@click.command()
def prepare() -> None:
    """Prepare the configured store (release, bundled extensions) and the signing keys."""
    settings = Settings.from_env()
    try:
        release = prepare_embedded_default(settings, make_store(settings), _note)
        load_or_create_signing_key(settings)
        load_or_create_secureboot_key(settings)
    except (FactoryError, ToolError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"ready: release {release.version} ({release.arch})")
