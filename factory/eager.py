"""Eager installer builds: when a schematic is created, queue its installer image builds for
the versions the operator lists (`IMAGE_FACTORY_EAGER_INSTALLER_VERSIONS`), so the first
`docker pull`/`talosctl upgrade --image` of it finds the build done instead of waiting on a
cold build longer than the client (or a proxy in front of the factory) will.

The builds are queued, never waited for: creating a schematic answers at once. A version
that is not stored (or a schematic that cannot be built for it) is skipped and logged; the
pull then answers as it would have anyway.
"""

from __future__ import annotations

import logging

from schematics import Schematic
from workers.dispatch.build_request import BuildRequest
from workers.engine import Engine
from workers.errors import FactoryError
from workers.planning.profiles import BUILT_ARCHES, parse_profile
from workers.releases.stored import list_arches

log = logging.getLogger(__name__)


def eager_versions(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def queue_installer_builds(eng: Engine, schematic_id: str, schematic: Schematic) -> None:
    """Queue `installer-<arch>.tar` of every listed version and built arch (nobody's quota)."""
    for version in eager_versions(eng.settings.eager_installer_versions):
        try:
            for arch in [a for a in list_arches(eng.store, version) if a in BUILT_ARCHES]:
                profile = parse_profile(f"installer-{arch}.tar")
                plan = eng.plan(schematic_id, version, profile)
                eng.queue.submit(BuildRequest.for_plan(schematic_id, plan))
        except FactoryError as error:
            log.warning("eager installer build of %s %s skipped: %s", schematic_id, version, error)
