"""First start of the embedded default: make a fresh data directory usable at once.

`prepare_embedded_default` (called by `image-factory serve` and `image-factory build`
before they do anything else):
1. builds the reference release (`Settings.reference_version`) for every architecture of
   `Settings.reference_arches` (amd64 first) when the store holds no release at all, showing
   progress;
2. runs every step of `FIRST_START_STEPS` with the reference release (or the newest one),
   then with that version's releases for the other arches.

Extension point: a further first-start step is a function
`step(settings, store, release, progress) -> None`, added to `FIRST_START_STEPS` below
(e.g. installing the bundled extensions). Steps run on every start, so each must be
idempotent and cheap when its work is already done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workers.catalog import install_bundled_extensions
from workers.catalog.rpi_overlay import install_rpi_overlay
from workers.errors import InvalidRequest, NotFound
from workers.releases.reference import build_reference_release
from workers.releases.stored import Release, list_arches, list_versions, load_release
from workers.releases.versions import validate_arch
from workers.settings import Settings
from workers.store import Store

Progress = Callable[[str], None]
Step = Callable[[Settings, Store, Release, Progress], None]

REFERENCE_ARCH = "amd64"

FIRST_START_STEPS: tuple[Step, ...] = (install_bundled_extensions, install_rpi_overlay)


def prepare_embedded_default(
    settings: Settings,
    store: Store,
    progress: Progress,
    steps: Sequence[Step] | None = None,
) -> Release:
    """Ensure a release exists, run the first-start steps; return the release they used."""
    versions = list_versions(store)
    if not versions:
        for arch in reference_arches(settings):
            progress(
                f"no release in the store yet: building the reference release "
                f"{settings.reference_version} for {arch} (Debian kernel + busybox; "
                f"takes a minute)"
            )
            build_reference_release(
                store,
                version=settings.reference_version,
                arch=arch,
                source_date_epoch=settings.source_date_epoch,
                cache_dir=settings.data_dir / "cache" / "debs",
                work_dir=settings.data_dir / "tmp",
                progress=progress,
            )
        versions = list_versions(store)
    release = _default_release(store, settings.reference_version, versions)
    for step in FIRST_START_STEPS if steps is None else steps:
        for each in _same_version_releases(store, release):
            step(settings, store, each, progress)
    return release


def _same_version_releases(store: Store, release: Release) -> list[Release]:
    """`release` first, then its version's releases for the other arches (arm64 schematics
    need e.g. the bundled module extensions built for the arm64 kernel)."""
    others = [a for a in list_arches(store, release.version) if a != release.arch]
    return [release, *(load_release(store, release.version, arch) for arch in sorted(others))]


def reference_arches(settings: Settings) -> list[str]:
    """`Settings.reference_arches` as a list, amd64 (the default release's arch) first."""
    arches = [validate_arch(a.strip()) for a in settings.reference_arches.split(",") if a.strip()]
    if REFERENCE_ARCH not in arches:
        raise InvalidRequest(
            f"IMAGE_FACTORY_REFERENCE_ARCHES must include {REFERENCE_ARCH}: "
            f"{settings.reference_arches!r}"
        )
    return sorted(set(arches), key=lambda a: (a != REFERENCE_ARCH, a))


def _default_release(store: Store, preferred: str, versions: list[str]) -> Release:
    """The preferred (reference) version when stored for amd64, else the newest amd64 one."""
    for version in [preferred, *reversed(versions)]:
        try:
            return load_release(store, version, REFERENCE_ARCH)
        except NotFound:
            continue
    raise NotFound(f"no release for {REFERENCE_ARCH} among {', '.join(versions)}")
