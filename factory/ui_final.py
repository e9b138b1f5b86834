"""The web form's final page: the schematic, every asset link with what stops it being built."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, current_app, render_template, url_for

from factory import downloads
from factory.engine import engine
from factory.i18n import _
from factory.releases_view import Releases
from factory.ui_steps import cmdline_error, step_page, wizard_url
from factory.urls import external_url, pxe_url, registry_reference_host
from factory.wizard import (
    STEP_TITLES,
    Choices,
)
from schematics import Schematic, SchematicError, canonical_bytes, parse_schematic
from workers.catalog import (
    check_overlay_options,
)
from workers.errors import FactoryError, InvalidRequest
from workers.outputs.schematics_store import save_schematic
from workers.planning.profiles import PLATFORMS, parse_profile

BUILDS_ROUTE = "/builds"


@dataclass(frozen=True)
class AssetRow:
    label: str
    path: str
    url: str
    digests: tuple[tuple[str, str], ...]
    note: str  # a sentence saying why it cannot be built, "" when it can
    sha256: str  # shown inline once the file is built, "" before

    @property
    def slug(self) -> str:
        return self.path.replace(".", "-")


@dataclass(frozen=True)
class Reference:
    url: str
    note: str


def _inspect_asset(
    schematic: Schematic, schematic_id: str, version: str, path: str
) -> tuple[str, str]:
    """(why `path` cannot be built or "", its sha256 when built already or "")."""
    eng = engine()
    try:
        # Only shown: a build writes what the plan needs, this page does not.
        plan = eng.preview_plan(schematic, schematic_id, version, parse_profile(path))
    except InvalidRequest as error:
        return _("Cannot be built from this schematic: %(problem)s.", problem=error), ""
    except FactoryError as error:
        return _("Not available from this factory yet: %(problem)s.", problem=error), ""
    built = eng.manifest(plan.key)
    return "", built.sha256 if built else ""


def final_page(choices: Choices, schematic: Schematic | None, releases: Releases) -> Response:
    eng = engine()
    if schematic is None:
        overlay = releases.overlay(choices.version, choices.board) if choices.board else None
        body = choices.schematic_text(overlay.image if overlay else "")
        try:
            schematic = parse_schematic(body, max_bytes=eng.settings.max_schematic_bytes)
        except SchematicError as error:
            return cmdline_error(choices, releases, str(error))
        if overlay is not None:
            try:
                check_overlay_options(overlay, schematic.overlay.options)
            except InvalidRequest as error:
                return step_page(
                    "cmdline",
                    choices,
                    releases,
                    _("Overlay options: %(problem)s.", problem=error),
                    "field-overlay-options",
                )
        schematic_id = save_schematic(eng.store, schematic)
    else:
        schematic_id = choices.schematic_id
    version = choices.version
    image_base = f"{external_url()}/image/{schematic_id}/{version}"

    def inspect(path: str) -> tuple[str, str]:
        return _inspect_asset(schematic, schematic_id, version, path)

    def note_for(path: str) -> str:
        return inspect(path)[0]

    offer = downloads.offer(choices.target, choices.platform_name, choices.arch, choices.secureboot)
    sections: dict[str, list[AssetRow]] = {}
    for asset in offer.assets:
        url = f"{image_base}/{asset.path}"
        digests = tuple((suffix.lstrip("."), url + suffix) for suffix in downloads.DIGEST_SUFFIXES)
        row = AssetRow(asset.label, asset.path, url, digests, *inspect(asset.path))
        sections.setdefault(asset.section, []).append(row)
    pxe = None
    if offer.pxe_path:
        pxe = Reference(
            f"{pxe_url()}/pxe/{schematic_id}/{version}/{offer.pxe_path}",
            note_for(f"cmdline-{offer.pxe_path}"),
        )
    installer = Reference(
        f"{registry_reference_host()}/{offer.installer_repository}/{schematic_id}:{version}",
        note_for(offer.installer_path),
    )
    context = {
        "title": _(STEP_TITLES["final"]),
        "summary": _summary(choices),
        "choices": choices,
        "schematic_id": schematic_id,
        "canonical": canonical_bytes(schematic).decode(),
        "schematic_url": url_for("api.get_schematic", schematic_id=schematic_id),
        "bookmark_url": wizard_url(choices),
        "edit_url": wizard_url(choices, "target"),
        "copy_url": _copy_url(choices, schematic, releases) if choices.pinned else "",
        "sections": list(sections.items()),
        "pxe": pxe,
        "installer": installer,
        "builds_url": BUILDS_ROUTE if _has_builds_api() else "",
        "build_words": build_words(),
        "secureboot": choices.secureboot,
        "signing_key_url": f"{external_url()}{url_for('images.signing_key')}",
        "cert_url": f"{external_url()}{url_for('secureboot.signing_cert')}",
        "yaml_name": f"schematic-{schematic_id[:12]}.yaml",
    }
    return Response(render_template("final.html", **context), status=200)


def build_words() -> dict[str, str]:
    """What the "Build now" script says (static/js/build.js), in the page's language."""
    stages = {
        "kernel": _("Fetching the kernel"),
        "cmdline": _("Writing the kernel command line"),
        "extensions": _("Packing the system extensions"),
        "modules": _("Adding the kernel modules"),
        "initramfs": _("Assembling the initramfs"),
        "iso": _("Writing the ISO image"),
        "disk": _("Writing the disk image"),
        "convert": _("Converting the disk image"),
        "compress": _("Compressing"),
        "queued": _("Waiting for a free worker"),
        "upload": _("Storing the result"),
    }
    # "%(...)s" are filled in by the script; `keep` passes them through gettext's formatting.
    keep = {name: f"%({name})s" for name in ("detail", "status", "path", "error")}
    return {
        **{f"stage_{stage}": words for stage, words in stages.items()},
        "refused": _("The factory cannot build this file for these choices%(detail)s.", **keep),
        "unknown": _(
            "The schematic or release is no longer known to this factory%(detail)s.", **keep
        ),
        "unsupported": _("This factory does not build this kind of file yet%(detail)s.", **keep),
        "busy": _(
            "The factory is busy or its storage is unreachable; try again in a minute%(detail)s.",
            **keep,
        ),
        "not_started": _(
            "The factory could not start the build (HTTP %(status)s)%(detail)s.", **keep
        ),
        "starting": _("Starting the build…"),
        "finished": _("Build finished."),
        "download": _("Download %(path)s", **keep),
        "try_again": _("Try again"),
        "failed": _("The build failed: %(error)s", **keep),
        "lost_progress": _(
            "Lost contact with the build's progress; it continues on the factory. "
            "Press the button again to follow it."
        ),
        "lost_factory": _("Lost contact with the factory. Check your connection and try again."),
        "unreachable": _("Could not reach the factory. Check your connection and try again."),
        "bytes": _("bytes"),
    }


def _copy_url(choices: Choices, schematic: Schematic, releases: Releases) -> str:
    """The wizard, at the extensions step, filled in from a pinned schematic ("" when the
    wizard cannot express all of it)."""
    copy = choices.edit_copy(schematic)
    if copy is None:
        return ""
    if copy.board:
        board = releases.overlay(copy.version, copy.board)
        if board is None or board.image != schematic.overlay.image:
            return ""
    return wizard_url(copy, "extensions")


def _summary(choices: Choices) -> str:
    if choices.target == "cloud":
        hardware = PLATFORMS[choices.platform].label
    elif choices.target == "sbc":
        hardware = _("board %(board)s", board=choices.board)
    else:
        hardware = _("bare metal")
    if choices.secureboot:
        return _(
            "Release %(version)s for %(hardware)s, %(arch)s, Secure Boot.",
            version=choices.version,
            hardware=hardware,
            arch=choices.arch,
        )
    return _(
        "Release %(version)s for %(hardware)s, %(arch)s.",
        version=choices.version,
        hardware=hardware,
        arch=choices.arch,
    )


def _has_builds_api() -> bool:
    """Whether this app serves `POST /builds` (the build-progress API)."""
    return any(
        rule.rule == BUILDS_ROUTE and "POST" in (rule.methods or ())
        for rule in current_app.url_map.iter_rules()
    )
