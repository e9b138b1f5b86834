"""`image-factory audit`: the audit log, oldest first, one event a line."""

from __future__ import annotations

import click

from workers.backends import choose_backend
from workers.settings import Settings
from workers.store import make_store
from workers.tenancy.audit import read_events


@click.command()
def audit() -> None:
    """Print every upload, withdrawal, deletion and token change: time, actor, action,
    subject and digest."""
    for event in read_events(make_store(choose_backend(Settings.from_env()))):
        digest = f" sha256:{event.digest}" if event.digest else ""
        click.echo(f"{event.time} {event.actor} {event.action} {event.subject}{digest}")
