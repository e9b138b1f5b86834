"""`image-factory extension add|validate|list`: custom extensions from the command line."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from extensions.errors import ExtensionError
from extensions.package import pack_extension
from workers.catalog import add_extension, catalog_for, list_extension_records
from workers.catalog.records import CANONICAL_EPOCH
from workers.errors import FactoryError
from workers.settings import Settings
from workers.store import make_store

EXIT_INVALID = 2


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(EXIT_INVALID)


@click.group()
def extension() -> None:
    """Add, validate and list system extensions."""


@extension.command("add")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--namespace", default=None, help="Catalog namespace (default: the setting).")
@click.option("--arch", default="amd64", show_default=True, help="Image to use from an OCI layout.")
def add(path: Path, namespace: str | None, arch: str) -> None:
    """Validate PATH (dir, tar, tar.gz, tar.zst or OCI layout) and store it."""
    settings = Settings.from_env()
    try:
        record = add_extension(
            make_store(settings),
            path,
            namespace or settings.extensions_namespace,
            arch=arch,
        )
    except FactoryError as exc:
        _fail(str(exc))
        return
    click.echo(f"{record.full_name} {record.version} sha256:{record.digest}")


@extension.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--arch", default="amd64", show_default=True, help="Image to use from an OCI layout.")
def validate(path: Path, arch: str) -> None:
    """Check PATH without storing it: exit 0 with a summary, or 2 with the reason."""
    with tempfile.TemporaryDirectory(prefix="validate-") as tmp:
        try:
            packed = pack_extension(
                path, Path(tmp) / "extension.tar", epoch=CANONICAL_EPOCH, arch=arch
            )
        except ExtensionError as exc:
            _fail(str(exc))
            return
    m = packed.manifest
    click.echo(f"name: {m.name}")
    click.echo(f"version: {m.version}")
    click.echo(f"author: {m.author}")
    click.echo(f"compatibility: {m.compatibility or '(any)'}")
    click.echo(f"digest: sha256:{packed.tar.digest}")
    click.echo(f"size: {packed.tar.size}")


@extension.command("list")
@click.option("--version", "version", default=None, help="Only what this release offers.")
@click.option("--arch", default="amd64", show_default=True, help="Architecture (with --version).")
def list_(version: str | None, arch: str) -> None:
    """Stored extensions: `<name> <version> sha256:<digest>`, one a line."""
    settings = Settings.from_env()
    store = make_store(settings)
    try:
        if version is None:
            records = sorted(list_extension_records(store), key=lambda r: (r.full_name, r.version))
        else:
            records = catalog_for(store, version, arch)
    except FactoryError as exc:
        _fail(str(exc))
        return
    for record in records:
        click.echo(f"{record.full_name} {record.version} sha256:{record.digest}")
