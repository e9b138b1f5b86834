"""Which stored releases the factory offers: upstream's `build.minTalosVersion` and
`build.brokenTalosVersions` (`IMAGE_FACTORY_MIN_VERSION`, `IMAGE_FACTORY_BROKEN_VERSIONS`).

A release below the minimum or named broken stays in the store (assets built from it stay
downloadable by build key) but, as upstream, is left out of `/versions` and answers every
route naming it (builds, catalogs, modules, talosctl) with 404 `version X is not available`
(X without the `v`, as upstream words it). `/versions?broken=true` lists the broken ones as
configured, whether stored or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.errors import InvalidRequest, NotFound
from workers.releases.versions import normalize_version, version_key
from workers.settings import Settings


@dataclass(frozen=True)
class VersionPolicy:
    minimum: str = ""  # `v`-form, "" = no floor
    broken: tuple[str, ...] = ()  # `v`-form, in the order configured

    @classmethod
    def from_settings(cls, settings: Settings) -> VersionPolicy:
        """The policy the settings name; ValueError naming the variable for a bad version."""
        minimum = _parse("IMAGE_FACTORY_MIN_VERSION", settings.min_version.strip())
        broken = tuple(
            _parse("IMAGE_FACTORY_BROKEN_VERSIONS", item.strip())
            for item in settings.broken_versions.split(",")
            if item.strip()
        )
        return cls(minimum=minimum, broken=broken)

    def offers(self, version: str) -> bool:
        if not self.minimum and not self.broken:
            return True  # the default, asked on every request naming a version
        key = version_key(version)
        if self.minimum and key < version_key(self.minimum):
            return False
        # Semver equality ignores build metadata, as upstream's `EQ`.
        return all(key != version_key(b) for b in self.broken)

    def offered(self, versions: list[str]) -> list[str]:
        return [v for v in versions if self.offers(v)]

    def check(self, version: str) -> None:
        """NotFound, in upstream's words, for a well-formed version not offered; a malformed
        one is left to the caller's own 400."""
        try:
            version = normalize_version(version)
        except InvalidRequest:
            return
        if not self.offers(version):
            raise NotFound(f"version {version.removeprefix('v')} is not available")


# No floor, nothing broken: every stored release is offered.
OFFER_ALL = VersionPolicy()


def _parse(variable: str, text: str) -> str:
    if not text:
        return ""
    try:
        return normalize_version(text)
    except InvalidRequest:
        raise ValueError(f"{variable}: {text!r} is not a semantic version") from None
