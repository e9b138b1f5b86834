"""The JSON links of a build, shared by `POST /builds` and a `202` download."""

from __future__ import annotations

from workers.dispatch.build_queue import BuildStatus


def build_links(status: BuildStatus, download_url: str) -> dict[str, str]:
    """The JSON body of `POST /builds` and of a `202` download."""
    return {
        "key": status.key,
        "state": status.state,
        "status_url": f"/builds/{status.key}",
        "events_url": f"/builds/{status.key}/events",
        "download_url": download_url,
    }
