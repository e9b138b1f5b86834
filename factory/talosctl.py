"""`/talosctl/<version>` and its files: the client binaries a release carries, as upstream.

- `GET /talosctl/<version>` → JSON array of absolute URLs
  `<external URL>/talosctl/v<version>/talosctl-<os>-<arch>[.exe]`, sorted; `[]` for a release
  that carries none; 404 `version X is not available` for a version with no release.
- `GET|HEAD /talosctl/<version>/<file>` → the binary (`Content-Disposition: attachment`,
  `Content-Length`, ETag, ranges as every asset), and like every asset `<file>.sha256`,
  `<file>.sha512` and `<file>.sigstore.json` (signed when imported). An unknown file is a 404
  naming it (upstream answers 500).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from factory.delivery import (
    bundle_response,
    checksum_response,
    download_name,
    stream_asset,
)
from factory.engine import engine
from factory.errors import text_error
from factory.sidecars import signed_now, split_suffix
from factory.urls import external_url
from workers.errors import NotFound
from workers.keys.signing import bundle_json
from workers.outputs.finished_builds import BuiltAsset
from workers.releases.clients import ClientFile, load_clients
from workers.releases.stored import list_arches
from workers.releases.versions import normalize_version

bp = Blueprint("talosctl", __name__)
CONTENT_TYPE = "application/octet-stream"


def _offered(version: str) -> str:
    """`v`-form of a version with a release; 404 in upstream's words for one without."""
    version = normalize_version(version)
    if not list_arches(engine().store, version):
        raise NotFound(f"version {version.removeprefix('v')} is not available")
    return version


@bp.route("/talosctl/<version>", methods=["GET"])
def listing(version: str) -> Response:
    version = _offered(version)
    base = f"{external_url()}/talosctl/{version}/"
    urls = [base + name for name in sorted(load_clients(engine().store, version))]
    return Response(json.dumps(urls) + "\n", status=200, mimetype="application/json")


@bp.route("/talosctl/<version>/<path>", methods=["GET", "HEAD"])
def client(version: str, path: str) -> Response:
    eng = engine()
    version = _offered(version)
    name, wanted = split_suffix(path)
    found = load_clients(eng.store, version).get(name)
    if found is None:
        raise NotFound(f"{name} is not available for version {version.removeprefix('v')}")
    asset = _as_asset(version, found)
    filename = download_name(request.args.get("filename"), name)
    if wanted == "sigstore":
        if asset.sigstore_bundle is None or not signed_now(eng, asset):
            # Signed when imported; the web side holds no private key to sign again.
            unsigned = "this file is not signed with the deployment's signing key: import it again"
            return text_error(unsigned, 500)
        return bundle_response(bundle_json(dict(asset.sigstore_bundle)), filename)
    if wanted:
        return checksum_response(asset, wanted, filename)
    modified = int(eng.store.stat(found.blob).modified)
    return stream_asset(
        request, eng.store, asset, filename, modified, lambda sha256: sha256 == found.sha256
    )


def _as_asset(version: str, found: ClientFile) -> BuiltAsset:
    """The binary described as a stored asset, so it is delivered as every asset is."""
    return BuiltAsset(
        key=f"talosctl-{version}-{found.name}",
        filename=found.name,
        size=found.size,
        sha256=found.sha256,
        sha512=found.sha512,
        content_type=CONTENT_TYPE,
        seconds=0.0,
        sigstore_bundle=found.sigstore_bundle,
    )
