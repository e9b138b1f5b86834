"""Air-gapped operation (upstream issue #310), the two ends:

- `image-factory export BUNDLE --schematic ID... --asset PATH... [--version V...]` on the
  connected side: the catalog, the schematics and their assets (built now when missing) and
  the public keys, as one tar (`workers.airgap`);
- `image-factory import-bundle BUNDLE` on the air-gapped side, into this factory's store
  (`IMAGE_FACTORY_DATA_DIR` or S3): it then answers the same IDs with the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import click

from workers.airgap.export import write_bundle
from workers.airgap.importer import load_bundle
from workers.airgap.layout import SIGNING_KEY_NAME
from workers.assembly.run import ToolError
from workers.backends import choose_backend
from workers.errors import FactoryError
from workers.pipeline.workdirs import work_root
from workers.releases.availability import VersionPolicy
from workers.releases.stored import list_versions
from workers.settings import Settings
from workers.store import make_store


def _note(message: str) -> None:
    click.echo(f"bundle: {message}", err=True)


@click.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--schematic", "schematics", multiple=True, required=True, help="Schematic ID.")
@click.option("--asset", "assets", multiple=True, help="Asset path, e.g. metal-amd64.iso.")
@click.option(
    "--version", "versions", multiple=True, help="Release version (default: every one offered)."
)
def export(
    bundle: Path, schematics: tuple[str, ...], assets: tuple[str, ...], versions: tuple[str, ...]
) -> None:
    """Write BUNDLE for an air-gapped factory: releases, extensions, overlays, the schematics,
    their ASSETs for each VERSION (built first when not built yet) and the public keys."""
    settings = Settings.from_env()
    try:
        store = make_store(choose_backend(settings))
        chosen = versions or tuple(
            VersionPolicy.from_settings(settings).offered(list_versions(store))
        )
        pairs = [(version, path) for version in chosen for path in assets]
        exported = write_bundle(store, settings, bundle, schematics, pairs, _note)
    except (FactoryError, ToolError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    for asset in exported:
        click.echo(f"{asset.schematic} {asset.version} {asset.path}  sha256:{asset.built.sha256}")


@click.command("import-bundle")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_bundle(bundle: Path) -> None:
    """Load BUNDLE (written by `export`) into this factory's store."""
    settings = Settings.from_env()
    try:
        loaded = load_bundle(
            make_store(choose_backend(settings)),
            bundle,
            work_root(settings) / "import-bundle",
            _note,
        )
    except (FactoryError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    for asset in loaded.assets:
        click.echo(
            f"{asset['schematic']} {asset['version']} {asset['path']}  sha256:{asset['sha256']}"
        )
    click.echo(
        f"signatures (.sigstore.json) of these assets verify with the bundle's {SIGNING_KEY_NAME}",
        err=True,
    )
