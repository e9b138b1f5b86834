"""Whether this factory may build uploaded content: only with a working sandbox, or when the
operator explicitly allows building without one (`IMAGE_FACTORY_ALLOW_UNSANDBOXED`).

Bundled extensions and overlays (origin `bundled`) build either way: they are trusted. Anything
added through `POST /extensions` or `image-factory extension add` counts as uploaded.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.assembly import run
from workers.errors import Refused
from workers.settings import Settings


def sandbox_warning(settings: Settings) -> str | None:
    """What start-up and `/readyz` say when builds cannot be sandboxed, or None when they can."""
    problem = run.sandbox_problem()
    if problem is None:
        return None
    if settings.allow_unsandboxed:
        consequence = (
            "uploaded extensions and overlays are built UNSANDBOXED, as "
            "IMAGE_FACTORY_ALLOW_UNSANDBOXED=true allows"
        )
    else:
        consequence = (
            "schematics with uploaded extensions or overlays are refused "
            "(IMAGE_FACTORY_ALLOW_UNSANDBOXED=true would build them unsandboxed)"
        )
    return f"build tools cannot be sandboxed: {problem}; {consequence}"


def refuse_unsandboxed(settings: Settings, uploaded: Sequence[str]) -> None:
    """Refuse to plan a build of `uploaded` (names of uploaded extensions or overlays) when
    this host cannot sandbox its tools and the operator has not allowed it anyway."""
    if not uploaded or settings.allow_unsandboxed or run.sandbox_problem() is None:
        return
    raise Refused(
        "this factory cannot sandbox its build tools, so it does not build uploaded "
        f"extensions or overlays ({', '.join(uploaded)}); ask its operator"
    )
