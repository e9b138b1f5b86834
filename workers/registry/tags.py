"""Which release a tag names: `latest` (the newest non-prerelease), `v1.0.0` or `1.0.0`.

Only releases with an architecture this factory builds are offered; other tags (cosign's
`sha256-<hex>.sig`) are stored tags, looked up as they are.
"""

from __future__ import annotations

from workers.errors import InvalidRequest
from workers.planning.profiles import BUILT_ARCHES
from workers.registry.errors import ManifestUnknown
from workers.releases.availability import OFFER_ALL, VersionPolicy
from workers.releases.stored import list_arches, list_versions
from workers.releases.versions import normalize_version
from workers.store import Store

LATEST = "latest"


def wants_release(tag: str) -> bool:
    """Whether a tag names a release (`latest`, `v1.0.0`, `1.0.0`), published on pull."""
    if tag == LATEST:
        return True
    try:
        normalize_version(tag)
    except InvalidRequest:
        return False
    return True


def available_versions(store: Store, policy: VersionPolicy = OFFER_ALL) -> list[str]:
    """Releases the policy offers with an architecture this factory builds, ascending."""
    return [
        version
        for version in policy.offered(list_versions(store))
        if any(arch in BUILT_ARCHES for arch in list_arches(store, version))
    ]


def resolve_version(store: Store, tag: str, policy: VersionPolicy = OFFER_ALL) -> str:
    """The release a tag names: `latest` = the newest non-prerelease, `1.0.0` = `v1.0.0`."""
    versions = available_versions(store, policy)
    if tag == LATEST:
        stable = [v for v in versions if "-" not in v.partition("+")[0]]
        if not stable:
            raise ManifestUnknown("no release is available for tag latest", {"tag": tag})
        return stable[-1]
    try:
        version = normalize_version(tag)
    except InvalidRequest:
        raise ManifestUnknown(f"unknown tag {tag!r}", {"tag": tag}) from None
    if version not in versions:
        raise ManifestUnknown(f"version {version} is not available", {"tag": tag})
    return version
