"""`image-factory release ...`: build the reference release, import one, list them."""

from __future__ import annotations

from pathlib import Path

import click

from workers.backends import choose_backend
from workers.errors import FactoryError
from workers.keys.signing import load_or_create_signing_key
from workers.releases.clients import import_clients
from workers.releases.importer import import_release
from workers.releases.reference import build_reference_release
from workers.releases.stored import list_versions
from workers.releases.versions import ARCHES
from workers.settings import Settings
from workers.store import make_store


def _progress(message: str) -> None:
    click.echo(f"release: {message}", err=True)


def _fail(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@click.group()
def release() -> None:
    """Base OS versions (releases) the factory builds images from."""


@release.command("build-reference")
@click.option("--version", "version", required=True, help="Release version, e.g. v1.0.0.")
@click.option("--arch", default="amd64", show_default=True, type=click.Choice(list(ARCHES)))
@click.option(
    "--source-date-epoch",
    type=int,
    default=None,
    help="Timestamp for every file (default: IMAGE_FACTORY_SOURCE_DATE_EPOCH).",
)
def build_reference(version: str, arch: str, source_date_epoch: int | None) -> None:
    """Build the reference OS (Debian kernel + busybox) from Debian packages and store it."""
    settings = Settings.from_env()
    try:
        built = build_reference_release(
            make_store(choose_backend(settings)),
            version=version,
            arch=arch,
            source_date_epoch=(
                settings.source_date_epoch if source_date_epoch is None else source_date_epoch
            ),
            cache_dir=settings.data_dir / "cache" / "debs",
            work_dir=settings.data_dir / "tmp",
            progress=_progress,
        )
    except FactoryError as exc:
        raise _fail(exc) from exc
    click.echo(f"{built.version} {built.arch} {built.digest}")


@release.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--version", "version", required=True, help="Release version, e.g. v1.9.0.")
@click.option("--arch", required=True, type=click.Choice(ARCHES))
@click.option(
    "--clients",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory with the release's talosctl-<os>-<arch>[.exe] files (default: DIRECTORY).",
)
@click.option(
    "--installer-base",
    type=click.Path(exists=True, path_type=Path),
    help="Talos installer-base image for ARCH: an OCI layout directory or a docker-archive.",
)
def import_(
    directory: Path, version: str, arch: str, clients: Path | None, installer_base: Path | None
) -> None:
    """Import boot assets from DIRECTORY (our layout or a Talos imager's usr/install/<arch>),
    and the client binaries (talosctl) found beside them, served at /talosctl/<version>."""
    settings = Settings.from_env()
    store = make_store(choose_backend(settings))
    try:
        imported = import_release(
            store,
            directory,
            version=version,
            arch=arch,
            default_source_date_epoch=settings.source_date_epoch,
            cache_dir=settings.data_dir / "cache" / "debs",
            work_dir=settings.data_dir / "tmp",
            progress=_progress,
            installer_base=installer_base,
        )
        key = load_or_create_signing_key(settings)
        for client in import_clients(store, imported.version, clients or directory, key):
            _progress(f"client {client.name} sha256:{client.sha256}")
    except (FactoryError, ValueError) as exc:
        raise _fail(exc) from exc
    click.echo(f"{imported.version} {imported.arch} {imported.digest}")


@release.command("list")
def list_() -> None:
    """Print every stored release version, one per line, oldest first."""
    for version in list_versions(make_store(choose_backend(Settings.from_env()))):
        click.echo(version)
