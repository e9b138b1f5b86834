"""`image-factory prepare`: make a deployment's store and keys ready, once.

The scaled mode's first step (docker-compose runs it as a one-shot service before the web and
worker processes start): the reference release when the store holds no release, the bundled
extensions, and the asset and SecureBoot signing keys. Key files that do not exist yet are
generated: at the configured paths (`IMAGE_FACTORY_SIGNING_KEY`,
`IMAGE_FACTORY_SECUREBOOT_KEY`/`_CERT`), else under `<data dir>/keys/`. Either way it prints
where they are and records their fingerprints and public halves in the store: every
`worker` checks its own keys against them (`workers.keys.deployment_keys`), and `serve`,
which holds no private key, serves the public halves from there (`workers.keys.public_keys`).
A store that records other keys is left alone unless `--replace-keys` says to adopt these.
The embedded default's `serve` does the same on its own.
"""

from __future__ import annotations

import click

from workers.backends import choose_backend
from workers.bootstrap import prepare_embedded_default
from workers.errors import FactoryError
from workers.keys.deployment_keys import Fingerprints, record_keys, recorded_fingerprints
from workers.keys.secureboot_key import load_or_create_secureboot_key, secureboot_paths
from workers.keys.signing import key_path, load_or_create_signing_key
from workers.settings import Settings
from workers.store import make_store


def _note(message: str) -> None:
    click.echo(f"prepare: {message}", err=True)


@click.command()
@click.option(
    "--replace-keys",
    is_flag=True,
    help="Record these keys as the deployment's even when the store records others "
    "(key rotation: every process must then be given the new key files).",
)
def prepare(replace_keys: bool) -> None:
    """Prepare the configured store (release, bundled extensions) and the signing keys."""
    settings = Settings.from_env()
    store = make_store(choose_backend(settings))
    try:
        signing_path = key_path(settings).resolve()
        sb_key_path, sb_cert_path = (path.resolve() for path in secureboot_paths(settings))
        existed = {path: path.exists() for path in (signing_path, sb_key_path, sb_cert_path)}
        release = prepare_embedded_default(settings, store, _note)
        signing = load_or_create_signing_key(settings, create_configured=True)
        secureboot = load_or_create_secureboot_key(settings, create_configured=True)
        found = Fingerprints.of(signing, secureboot)
        recorded = recorded_fingerprints(store)
        if recorded is not None and recorded != found and not replace_keys:
            raise click.ClickException(
                f"the store records other deployment keys (signing key sha256 "
                f"{recorded.signing_key}, SecureBoot certificate sha256 "
                f"{recorded.secureboot_cert}) than these ({found.signing_key}, "
                f"{found.secureboot_cert}): configure the deployment's key files, or pass "
                "--replace-keys to make these the deployment's keys"
            )
        record_keys(store, signing, secureboot)
    except (FactoryError, OSError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for what, path, variable in (
        ("signing key", signing_path, "IMAGE_FACTORY_SIGNING_KEY"),
        ("SecureBoot key", sb_key_path, "IMAGE_FACTORY_SECUREBOOT_KEY"),
        ("SecureBoot certificate", sb_cert_path, "IMAGE_FACTORY_SECUREBOOT_CERT"),
    ):
        done = "using" if existed[path] else "generated"
        _note(f"{what}: {done} {path} (set {variable}={path} for every worker)")
    _note(
        f"recorded the deployment's keys in the store: signing key sha256 "
        f"{found.signing_key}, SecureBoot certificate sha256 {found.secureboot_cert}; "
        "the web side (serve) reads their public halves from there and needs no key file"
    )
    click.echo(f"ready: release {release.version} ({release.arch})")
