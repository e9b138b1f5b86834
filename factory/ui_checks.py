"""The web form's validation: which choices a release allows, what an upload may hold."""

from __future__ import annotations

from dataclasses import dataclass

from factory.i18n import _
from factory.releases_view import Releases
from factory.wizard import (
    BOOTLOADERS,
    TARGETS,
    Choices,
)
from schematics import Schematic
from workers.catalog import (
    check_overlay_options,
)
from workers.errors import InvalidRequest
from workers.planning.profiles import PLATFORMS
from workers.releases.versions import ARCHES

ARCH_LABELS = {"amd64": "amd64 (x86-64: most PCs and servers)", "arm64": "arm64 (AArch64)"}


@dataclass(frozen=True)
class ArchOption:
    name: str
    label: str
    reason: str  # why it cannot be chosen, "" when it can


def arch_options(choices: Choices, releases: Releases) -> list[ArchOption]:
    options = []
    for arch in ARCHES:
        reason = ""
        if not releases.has_arch(choices.version, arch):
            reason = _(
                "Release %(version)s has no %(arch)s build.", version=choices.version, arch=arch
            )
        elif choices.target == "cloud" and arch not in PLATFORMS[choices.platform].arches:
            reason = _(
                "%(platform)s has no %(arch)s machines.",
                platform=PLATFORMS[choices.platform].label,
                arch=arch,
            )
        options.append(ArchOption(arch, ARCH_LABELS[arch], reason))
    return options


def find_problem(choices: Choices, releases: Releases) -> tuple[str, str] | None:
    """The first step whose value cannot be used, with a message saying why."""
    if choices.target and choices.target not in TARGETS:
        return "target", _(
            '"%(value)s" is not a hardware type this form knows.', value=choices.target
        )
    if not choices.version:
        return None
    if choices.version not in releases.versions:
        return "version", _("Release %(version)s is not available here.", version=choices.version)
    cloud = choices.target == "cloud"
    if cloud and choices.platform and choices.platform not in PLATFORMS.keys() - {"metal"}:
        return "platform", _(
            '"%(value)s" is not a cloud platform this form knows.', value=choices.platform
        )
    board = choices.target == "sbc" and choices.board and not choices.pinned
    if board and releases.overlay(choices.version, choices.board) is None:
        return "board", _(
            "Release %(version)s has no overlay for %(board)s.",
            version=choices.version,
            board=choices.board,
        )
    if not choices.arch or (choices.target == "cloud" and not choices.platform):
        return None
    reasons = {option.name: option.reason for option in arch_options(choices, releases)}
    if choices.arch not in reasons:
        return "arch", _('"%(value)s" is not an architecture this form knows.', value=choices.arch)
    if reasons[choices.arch]:
        return "arch", reasons[choices.arch]
    known = {e.full_name for e in releases.extensions(choices.version, choices.arch)}
    unknown = sorted(set(choices.extensions or ()) - known)
    if unknown:
        return "extensions", (
            _(
                "Not offered for %(version)s (%(arch)s): %(names)s.",
                version=choices.version,
                arch=choices.arch,
                names=", ".join(unknown),
            )
        )
    missing = sorted(
        set(choices.modules or ()) - set(releases.modules(choices.version, choices.arch))
    )
    if missing:
        return "modules", (
            _(
                "Release %(version)s (%(arch)s) has no module named %(names)s.",
                version=choices.version,
                arch=choices.arch,
                names=", ".join(missing),
            )
        )
    if choices.bootloader not in BOOTLOADERS:
        return "cmdline", _(
            '"%(value)s" is not a bootloader this form knows.', value=choices.bootloader
        )
    return None


@dataclass(frozen=True)
class UploadForm:
    version: str
    platform: str
    arch: str
    secureboot: bool


def upload_problem(form: UploadForm, schematic: Schematic, releases: Releases) -> str:
    """What in the file or the form this factory cannot build, as a sentence ("" if none)."""
    if form.version not in releases.versions:
        return _("Release %(version)s is not available here.", version=form.version)
    arches = upload_arches(form.version, releases)
    reason = next((o.reason for o in arches if o.name == form.arch), "")
    if form.arch not in ARCHES or reason:
        return reason or _('"%(value)s" is not an architecture this form knows.', value=form.arch)
    known = {e.full_name for e in releases.extensions(form.version, form.arch)}
    named = schematic.customization.system_extensions.official_extensions
    unknown = sorted(set(named) - known)
    if unknown:
        return _(
            "Your schematic names extensions that release %(version)s (%(arch)s) does not "
            "offer: %(names)s. The extensions catalog lists those it does.",
            version=form.version,
            arch=form.arch,
            names=", ".join(unknown),
        )
    if schematic.overlay.name:
        overlay = releases.overlay(form.version, schematic.overlay.name)
        if overlay is None:
            return _(
                "Release %(version)s has no overlay for %(board)s.",
                version=form.version,
                board=schematic.overlay.name,
            )
        try:
            check_overlay_options(overlay, schematic.overlay.options)
        except InvalidRequest as error:
            return _("Your schematic's overlay options: %(problem)s.", problem=error)
    return ""


def upload_arches(version: str, releases: Releases) -> list[ArchOption]:
    return arch_options(Choices(target="metal", version=version), releases)
