"""The web form's steps: one page per choice, each a bookmarkable URL, and the pages around them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Response, render_template, request, url_for

from factory.i18n import _
from factory.releases_view import Releases
from factory.ui_checks import arch_options
from factory.wizard import (
    BOOTLOADERS,
    STEP_FIELDS,
    STEP_TITLES,
    TARGETS,
    Choices,
    options_message,
)
from workers.planning.profiles import PLATFORMS
from workers.releases.versions import version_key

MODULE_RESULTS_LIMIT = 60


def wizard_url(choices: Choices, step: str = "") -> str:
    query = choices.query()
    if step and step != choices.first_open_step():
        query.append(("step", step))
    return url_for("ui.wizard") + ("?" + urlencode(query) if query else "")


def step_page(
    step: str, choices: Choices, releases: Releases, error: str, error_field: str = ""
) -> Response:
    if not releases.versions:
        return message_page(_("No releases yet"), _("This factory holds no release to build."), 503)
    steps = choices.steps()
    before = choices.step_before(step)
    context: dict[str, Any] = {
        "title": _(STEP_TITLES[step]),
        "step": step,
        "steps": steps,
        "step_titles": STEP_TITLES,
        "choices": choices,
        "hidden": choices.query(without=STEP_FIELDS[step]),
        "back_step": before or "",
        "step_urls": _step_urls(choices, step),
        "all_done": choices.first_open_step() == "final",
        "error": error,
        "error_field": (error_field or f"field-{step}") if error else "",
    }
    context.update(_STEP_CONTEXT[step](choices, releases))
    return Response(render_template(f"step_{step}.html", **context), status=400 if error else 200)


def _step_urls(choices: Choices, current: str) -> dict[str, str]:
    """Links for the progress chips: every step up to the first open one, but the current."""
    steps = choices.steps()
    reachable = steps[: steps.index(choices.first_open_step()) + 1]
    return {step: wizard_url(choices, step) for step in reachable if step != current}


def _target_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    disabled = {}
    if choices.pinned:
        disabled["sbc"] = _("The schematic has no board overlay.")
    return {"targets": TARGETS, "selected": choices.target or "metal", "disabled": disabled}


def _version_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    newest_first = sorted(releases.versions, key=version_key, reverse=True)
    stable = [v for v in newest_first if "-" not in v]
    groups: dict[str, list[str]] = {}
    for version in newest_first:
        major, minor = version.lstrip("v").split(".")[:2]
        pre = "-pre" if "-" in version else ""
        groups.setdefault(f"{major}.{minor}{pre}", []).append(version)
    default = choices.version or (stable or newest_first)[0]
    return {"version_groups": list(groups.items()), "selected": default}


def _platform_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    clouds = [p for p in PLATFORMS.values() if p.name != "metal"]
    return {"platforms": clouds, "selected": choices.platform or clouds[0].name}


def _board_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    overlays = releases.overlays(choices.version)
    default = choices.board or (overlays[0].name if overlays else "")
    return {"overlays": overlays, "selected": default}


def _arch_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    options = arch_options(choices, releases)
    usable = [o.name for o in options if not o.reason]
    default = choices.arch if choices.arch in usable else (usable[0] if usable else "")
    return {
        "arches": options,
        "selected": default,
        "secureboot_possible": choices.secureboot_possible,
    }


def _extensions_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    return {
        "extensions": releases.extensions(choices.version, choices.arch),
        "selected": set(choices.extensions or ()),
    }


def search_modules(
    names: Sequence[str], text: str, exclude: Sequence[str], limit: int
) -> tuple[list[str], int]:
    """Module names containing `text` (`-` and `_` alike, any case), names starting with it
    first; at most `limit` of them, and how many matched in all."""
    needle = text.strip().lower().replace("-", "_")
    skip = set(exclude)
    matches = [n for n in names if needle in n and n not in skip]
    matches.sort(key=lambda name: (not name.startswith(needle), name))
    return matches[:limit], len(matches)


def module_context(choices: Choices, search: str, releases: Releases) -> dict[str, Any]:
    names = releases.modules(choices.version, choices.arch)
    selected = list(choices.modules or ())
    results: list[str] = []
    count = 0
    if search.strip():  # before a search, a count and the search box: not a long list
        results, count = search_modules(names, search, selected, MODULE_RESULTS_LIMIT)
    return {
        "selected": selected,
        "search": search.strip(),
        "results": results,
        "match_count": count,
        "total_modules": len(names),
    }


def _modules_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    return module_context(choices, request.args.get("module-search", ""), releases)


def _cmdline_context(choices: Choices, releases: Releases) -> dict[str, Any]:
    bootloaders = dict(BOOTLOADERS)
    if choices.secureboot:
        del bootloaders["grub"]  # GRUB cannot boot the signed UKI
    overlay = releases.overlay(choices.version, choices.board) if choices.board else None
    return {
        "bootloaders": bootloaders,
        "overlay_option_names": list(overlay.options) if overlay else [],
    }


_STEP_CONTEXT = {
    "target": _target_context,
    "version": _version_context,
    "platform": _platform_context,
    "board": _board_context,
    "arch": _arch_context,
    "extensions": _extensions_context,
    "modules": _modules_context,
    "cmdline": _cmdline_context,
}


def cmdline_error(choices: Choices, releases: Releases, message: str) -> Response:
    """The schematic parser refused what the last step produced: show that step again."""
    field = "field-cmdline"
    # Everything but the options text is generated and well-formed, so a YAML error when
    # there are options is about them.
    options = choices.target == "sbc" and choices.overlay_options.strip()
    if options and "customization" not in message:
        message = _("Overlay options: %(problem)s", problem=options_message(message))
        field = "field-overlay-options"
    return step_page("cmdline", choices, releases, message, field)


def message_page(title: str, message: str, status: int) -> Response:
    return Response(render_template("message.html", title=title, message=message), status=status)
