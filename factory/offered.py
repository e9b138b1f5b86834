"""Releases below `IMAGE_FACTORY_MIN_VERSION` or named in `IMAGE_FACTORY_BROKEN_VERSIONS` are
not offered on any route that names a version (`workers.releases.availability`)."""

from __future__ import annotations

from flask import Flask, current_app, request

from workers.releases.availability import VersionPolicy
from workers.settings import Settings

POLICY_KEY = "image_factory_version_policy"


def install_version_policy(app: Flask, settings: Settings) -> None:
    """Check the settings now (a bad version stops the start) and refuse, before its view runs,
    any route whose `<version>` is not offered (404 in upstream's words)."""
    policy = VersionPolicy.from_settings(settings)
    app.extensions[POLICY_KEY] = policy

    @app.before_request
    def offered_versions_only() -> None:
        version = (request.view_args or {}).get("version")
        if isinstance(version, str):
            policy.check(version)


def version_policy() -> VersionPolicy:
    found: VersionPolicy = current_app.extensions[POLICY_KEY]
    return found
