"""What `serve` and `worker` check before they start in the scaled mode.

A process that cannot do its job correctly stops here with a message saying what to do,
rather than start and fail each request (or sign with keys nobody else has).
"""

from __future__ import annotations

import click

from workers.errors import Unavailable
from workers.keys.deployment_keys import KeyProblem, check_deployment_keys, check_public_keys
from workers.releases.stored import list_versions
from workers.settings import Settings
from workers.store import Store


def check_scaled_start(settings: Settings, store: Store, signs: bool = True) -> None:
    """The store answers, holds a release, and records the keys this process has (`signs`:
    a worker) or the public halves it serves (the web side, which holds no private key)."""
    try:
        store.ping()
        if not list_versions(store):
            raise click.ClickException(
                f"the store (bucket {settings.s3_bucket}) holds no release: run "
                "`image-factory prepare` once with the same IMAGE_FACTORY_S3_* settings first"
            )
        check = check_deployment_keys(settings, store) if signs else check_public_keys(store)
    except (KeyProblem, Unavailable) as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"deployment keys: signing key sha256 {check.signing_key}, "
        f"SecureBoot certificate sha256 {check.secureboot_cert}",
        err=True,
    )
