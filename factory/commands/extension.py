"""`image-factory extension add|validate|list|withdraw|delete|collect`: custom extensions
from the command line (the operator's own hand on the store: no token, audited as "cli")."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from extensions.errors import ExtensionError
from extensions.package import pack_extension
from workers.backends import choose_backend
from workers.catalog import add_extension, catalog_for, list_extension_records
from workers.catalog.collect import collect_unused_uploads
from workers.catalog.lifecycle import delete_extension, withdraw_extension
from workers.catalog.records import CANONICAL_EPOCH, ExtensionRecord
from workers.errors import FactoryError
from workers.settings import Settings
from workers.store import Store, make_store
from workers.tenancy.audit import ACTOR_CLI, record_event

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
    store = make_store(choose_backend(settings))
    try:
        record = add_extension(
            store,
            path,
            namespace or settings.extensions_namespace,
            arch=arch,
        )
    except FactoryError as exc:
        _fail(str(exc))
        return
    record_event(
        store, ACTOR_CLI, "extension.add", f"{record.full_name} {record.version}", record.digest
    )
    click.echo(f"{record.full_name} {record.version} sha256:{record.digest}")


@extension.command("withdraw")
@click.argument("name")
@click.argument("version")
def withdraw(name: str, version: str) -> None:
    """Withdraw NAME (ns/name) at VERSION: new builds refuse it (410), built assets stay."""
    _change_versions(withdraw_extension, "withdrawn", name, version)


@extension.command("delete")
@click.argument("name")
@click.argument("version")
def delete(name: str, version: str) -> None:
    """Delete NAME (ns/name) at VERSION, unless a schematic still references it."""
    _change_versions(delete_extension, "deleted", name, version)


def _change_versions(
    change: Callable[[Store, str, str, str], list[ExtensionRecord]],
    done: str,
    name: str,
    version: str,
) -> None:
    """Apply a lifecycle `change` as the operator, naming each record it touched."""
    store = make_store(choose_backend(Settings.from_env()))
    try:
        records = change(store, name, version, ACTOR_CLI)
    except FactoryError as exc:
        _fail(str(exc))
        return
    for record in records:
        click.echo(f"{done} {record.full_name} {record.version} sha256:{record.digest}")


@extension.command("collect")
def collect() -> None:
    """Delete uploads nobody uses, once unused for IMAGE_FACTORY_UPLOAD_GRACE_SECONDS (what
    the embedded default's housekeeping does hourly; run it from cron in the scaled mode)."""
    settings = Settings.from_env()
    store = make_store(choose_backend(settings))
    try:
        collected = collect_unused_uploads(store, settings.upload_grace_seconds, ACTOR_CLI)
    except FactoryError as exc:
        _fail(str(exc))
        return
    for gone in collected:
        click.echo(f"collected {gone.kind} {gone.subject} sha256:{gone.digest}")


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
    store = make_store(choose_backend(settings))
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
