"""`image-factory verify FILE [--url URL] [--key PEM]`: check a downloaded asset against its
checksum, Sigstore signature, SBOM and signed provenance (`workers.evidence.verify`).

With `--url` (the asset's URL, or the directory URL ending in `/` to which FILE's name is
appended) the documents are fetched from the factory (`<url>.sha256`, `.sigstore.json`,
`.spdx.json`, `.intoto.jsonl`), and, unless `--key` pins one, the public key from
`<scheme>://<host>/oci/cosign/signing-key.pub`. Without it they are read from beside FILE
(`FILE.sha256`, ...) and `--key` is required.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import click

from workers.evidence.verify import (
    Published,
    VerificationFailed,
    load_public_key,
    verify_documents,
)
from workers.hashing import sha256_file

SUFFIXES = (".sha256", ".sigstore.json", ".spdx.json", ".intoto.jsonl")
KEY_PATH = "/oci/cosign/signing-key.pub"
FETCH_TIMEOUT = 60.0


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", help="The asset's URL on the factory (or its directory, ending in /).")
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The factory's public key (PEM); default with --url: fetched from the factory.",
)
def verify(file: Path, url: str | None, key: Path | None) -> None:
    """Verify FILE's checksum, signature, SBOM and provenance against the factory's key."""
    if url is None and key is None:
        raise click.UsageError("give --key with local documents, or --url to fetch them")
    try:
        if url is not None:
            asset_url = url + file.name if url.endswith("/") else url
            documents = [_fetch(asset_url + suffix) for suffix in SUFFIXES]
            parts = urlsplit(asset_url)
            pem = key.read_bytes() if key else _fetch(f"{parts.scheme}://{parts.netloc}{KEY_PATH}")
        else:
            assert key is not None
            documents = [_local(file, suffix) for suffix in SUFFIXES]
            pem = key.read_bytes()
        published = Published(*documents)
        for line in verify_documents(sha256_file(file), published, load_public_key(pem)):
            click.echo(f"ok  {line}")
    except VerificationFailed as error:
        raise click.ClickException(f"{file.name}: {error}") from None
    click.echo(f"{file.name}: verified")


def _fetch(url: str) -> bytes:
    if urlsplit(url).scheme not in ("http", "https"):
        raise VerificationFailed(f"{url}: only http and https URLs can be fetched")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as error:
        raise VerificationFailed(f"fetching {url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise VerificationFailed(f"fetching {url}: {error}") from None


def _local(file: Path, suffix: str) -> bytes:
    path = file.with_name(file.name + suffix)
    try:
        return path.read_bytes()
    except OSError as error:
        raise VerificationFailed(f"{path.name}: {error.strerror}") from None
