"""`image-factory token create|list|revoke`: API tokens, kept (as hashes) in the store."""

from __future__ import annotations

import sys
import time

import click

from workers.backends import choose_backend
from workers.errors import FactoryError
from workers.settings import Settings
from workers.store import make_store
from workers.tenancy.audit import ACTOR_CLI, record_event
from workers.tenancy.tokens import ROLES, create_token, list_tokens, parse_duration, revoke_token

EXIT_INVALID = 2


def _when(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)) if seconds else "-"


@click.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the token may do.")
@click.option("--expires", default=None, help="Lifetime, e.g. 3600, 90m, 12h, 30d, 2w.")
def create(name: str, role: str, expires: str | None) -> None:
    """Make token NAME; the token is printed once, on the last line, and never stored."""
    store = make_store(choose_backend(Settings.from_env()))
    try:
        record, secret = create_token(store, name, role, parse_duration(expires) if expires else 0)
    except FactoryError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_INVALID)
    record_event(store, ACTOR_CLI, "token.create", f"{name} ({role})")
    click.echo(f"token {record.name}: role {record.role}, expires {_when(record.expires)}")
    click.echo(secret)


@token.command("list")
def list_() -> None:
    """Every token: name, role, state, created, expires (never the token)."""
    now = int(time.time())
    for record in list_tokens(make_store(choose_backend(Settings.from_env()))):
        click.echo(
            f"{record.name} {record.role} {record.state(now)} "
            f"created {_when(record.created)} expires {_when(record.expires)}"
        )


@token.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke token NAME: it stops working at once."""
    store = make_store(choose_backend(Settings.from_env()))
    try:
        revoke_token(store, name)
    except FactoryError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_INVALID)
    record_event(store, ACTOR_CLI, "token.revoke", name)
    click.echo(f"revoked {name}")
