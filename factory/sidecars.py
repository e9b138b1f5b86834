"""The files served beside every asset (checksums, the Sigstore bundle): which one a path asks
for, and the bundle to serve. Shared by the image and talosctl blueprints."""

from __future__ import annotations

from workers.airgap.trust import trusted_hints
from workers.engine import Engine
from workers.keys.signing import bundle_json
from workers.outputs.finished_builds import BuiltAsset

# Checked in this order, as upstream: `.sigstore.json` wins over a `.sha256` before it.
SUFFIXES = ((".sigstore.json", "sigstore"), (".sha256", "sha256"), (".sha512", "sha512"))


def split_suffix(path: str) -> tuple[str, str]:
    """(asset path, "" | "sha256" | "sha512" | "sigstore")."""
    for suffix, wanted in SUFFIXES:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path.removesuffix(suffix), wanted
    return path, ""


def signed_bundle(eng: Engine, built: BuiltAsset) -> bytes:
    """The bundle signed at publish time, or (a manifest from before signing moved there, or
    signed with a key this service no longer uses) one signed now with the current key.
    A bundle signed by the exporter of an imported air-gap bundle is served as it is."""
    bundle = built.sigstore_bundle
    hint = (
        bundle.get("verificationMaterial", {}).get("publicKey", {}).get("hint") if bundle else None
    )
    own = eng.signing_key.public_key_hint
    if bundle is None or (hint != own and hint not in trusted_hints(eng.store)):
        return bundle_json(eng.signing_key.sigstore_bundle(built.sha256))
    return bundle_json(dict(bundle))
