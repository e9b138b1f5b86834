"""The files served beside every asset (checksums, the Sigstore bundle): which one a path asks
for, and the bundle to serve. Shared by the image and talosctl blueprints."""

from __future__ import annotations

from factory.evidence import SUFFIXES as EVIDENCE_SUFFIXES
from workers.airgap.trust import trusted_hints
from workers.engine import Engine
from workers.outputs.finished_builds import BuiltAsset

# Checked in this order, as upstream: `.sigstore.json` wins over a `.sha256` before it.
SUFFIXES = (
    (".sigstore.json", "sigstore"),
    (".sha256", "sha256"),
    (".sha512", "sha512"),
    *EVIDENCE_SUFFIXES,
)


def split_suffix(path: str) -> tuple[str, str]:
    """(asset path, "" | "sha256" | "sha512" | "sigstore")."""
    for suffix, wanted in SUFFIXES:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path.removesuffix(suffix), wanted
    return path, ""


def signed_now(eng: Engine, built: BuiltAsset) -> bool:
    """Whether the build's bundle was signed with the deployment's key (or, for an asset
    imported from an air-gap bundle, the exporter's trusted key)."""
    bundle = built.sigstore_bundle
    hint = (
        bundle.get("verificationMaterial", {}).get("publicKey", {}).get("hint") if bundle else None
    )
    return hint == eng.public_keys.signing_key_hint or hint in trusted_hints(eng.store)
