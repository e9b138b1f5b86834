"""Release version strings: strict semver, written with a `v` prefix, ordered by precedence.

Callers may give `1.0.0` or `v1.0.0`; everything stored and shown uses the `v` form.
"""

from __future__ import annotations

import re

from workers.errors import InvalidRequest

ARCHES = ("amd64", "arm64")

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)

# A sort key: (major, minor, patch, is-release, prerelease identifiers).
VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def normalize_version(text: str) -> str:
    """`1.0.0` or `v1.0.0` → `v1.0.0`; anything else → InvalidRequest."""
    if not _SEMVER.match(text):
        raise InvalidRequest(f'invalid version "{text}"')
    return text if text.startswith("v") else "v" + text


def validate_arch(arch: str) -> str:
    if arch not in ARCHES:
        raise InvalidRequest(f'invalid arch "{arch}": expected one of {", ".join(ARCHES)}')
    return arch


def version_key(version: str) -> VersionKey:
    """Semver precedence: numeric parts, a pre-release sorts before its release."""
    match = _SEMVER.match(version)
    if not match:
        raise InvalidRequest(f'invalid version "{version}"')
    pre = match.group("pre")
    identifiers: tuple[tuple[int, int, str], ...] = ()
    if pre:
        # Numeric identifiers sort before alphanumeric ones and compare as numbers.
        identifiers = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")
        )
    return (
        int(match.group("major")),
        int(match.group("minor")),
        int(match.group("patch")),
        0 if pre else 1,
        identifiers,
    )


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=version_key)
