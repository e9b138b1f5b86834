"""The web form: a step-by-step wizard, a schematic upload page and the final download page.

- `GET /` walks the steps of `factory.wizard` (every choice in the query string; a step's
  form submits with `from=<step>` and is redirected to the next step's clean URL); when all
  choices are made it stores the schematic through `add_schematic`, exactly as
  `POST /schematics` does, and shows its ID, canonical YAML and the download links.
- `GET /ui/kernel-modules` is the module search as an HTML fragment (the module step's
  script swaps it in as the user types; without scripts the step's Search button does it).
- `GET|POST /upload`: a schematic file (multipart) → the same final page; a file the parser
  refuses comes back with its message next to the form (400).

Pages carry a strict Content-Security-Policy: no inline script or style, nothing off-site.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from factory import downloads
from factory.bodies import load_small_body
from factory.engine import engine
from factory.i18n import _, remember_language
from factory.offered import version_policy
from factory.services import services
from factory.urls import external_url, pxe_url, registry_reference_host
from factory.wizard import (
    BOOTLOADERS,
    STEP_FIELDS,
    STEP_TITLES,
    TARGETS,
    Choices,
    options_message,
)
from factory.words import explain_schematic_error
from schematics import Schematic, SchematicError, canonical_bytes, parse_schematic
from workers.catalog import (
    ExtensionRecord,
    OverlayRecord,
    catalog_for,
    check_overlay_options,
    overlay_catalog_for,
)
from workers.errors import FactoryError, InvalidRequest, NotFound
from workers.plans import make_plan
from workers.profiles import PLATFORMS, parse_profile
from workers.releases.catalog import list_versions, load_release
from workers.releases.modules import module_index
from workers.releases.versions import ARCHES, version_key
from workers.schematics_store import load_schematic, save_schematic

bp = Blueprint("ui", __name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
MODULE_RESULTS_LIMIT = 60
ARCH_LABELS = {"amd64": "amd64 (x86-64: most PCs and servers)", "arm64": "arm64 (AArch64)"}
BUILDS_ROUTE = "/builds"
_T = TypeVar("_T")


@bp.after_request
def security_headers(response: Response) -> Response:
    remember_language(response)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


class Releases:
    """What the store offers, each fact read at most once per request."""

    def __init__(self) -> None:
        self.store = services().store
        self._memo: dict[tuple[str, ...], Any] = {}

    def _once(self, key: tuple[str, ...], read: Callable[[], _T]) -> _T:
        if key not in self._memo:
            self._memo[key] = read()
        value: _T = self._memo[key]
        return value

    @property
    def versions(self) -> list[str]:
        offered = version_policy().offered
        return self._once(("versions",), lambda: offered(list_versions(self.store)))

    def has_arch(self, version: str, arch: str) -> bool:
        def read() -> bool:
            try:
                load_release(self.store, version, arch)
            except NotFound:
                return False
            return True

        return self._once(("arch", version, arch), read)

    def extensions(self, version: str, arch: str) -> list[ExtensionRecord]:
        return self._once(
            ("extensions", version, arch), lambda: catalog_for(self.store, version, arch)
        )

    def overlays(self, version: str) -> list[OverlayRecord]:
        return self._once(("overlays", version), lambda: overlay_catalog_for(self.store, version))

    def modules(self, version: str, arch: str) -> list[str]:
        def read() -> list[str]:
            return module_index(self.store, load_release(self.store, version, arch)).names()

        return self._once(("modules", version, arch), read)

    def overlay(self, version: str, name: str) -> OverlayRecord | None:
        return next((o for o in self.overlays(version) if o.name == name), None)


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


def wizard_url(choices: Choices, step: str = "") -> str:
    query = choices.query()
    if step and step != choices.first_open_step():
        query.append(("step", step))
    return url_for("ui.wizard") + ("?" + urlencode(query) if query else "")


@bp.get("/")
def wizard() -> Any:
    args = request.args
    choices = Choices.from_query(args.to_dict(flat=False))
    schematic = None
    if choices.schematic_id:
        try:
            schematic = load_schematic(services().store, choices.schematic_id)
        except NotFound:
            return _message_page(
                _("Schematic not found"),
                _("There is no schematic with ID %(id)s here.", id=choices.schematic_id),
                404,
            )
        choices = choices.pin(schematic)
    asked = args.get("step", "")
    came_from = args.get("from", "")
    if came_from and asked != came_from:
        # Next (no step asked), Back or "Save and show the image": the form's choices are
        # kept and the asked step (else the next one) is shown at its clean URL.
        if asked not in choices.steps():
            asked = choices.step_after(came_from) if came_from in STEP_FIELDS else ""
        return redirect(wizard_url(choices, asked), 303)
    releases = Releases()
    problem = find_problem(choices, releases)
    if problem is not None:
        step, error = problem
    elif asked in choices.steps() and (asked != "final" or choices.first_open_step() == "final"):
        step, error = asked, ""
    else:
        step, error = choices.first_open_step(), ""
    if step == "final":
        return _final_page(choices, schematic, releases)
    return _step_page(step, choices, releases, error)


def _step_page(
    step: str, choices: Choices, releases: Releases, error: str, error_field: str = ""
) -> Response:
    if not releases.versions:
        return _message_page(
            _("No releases yet"), _("This factory holds no release to build."), 503
        )
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


def _module_context(choices: Choices, search: str, releases: Releases) -> dict[str, Any]:
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
    return _module_context(choices, request.args.get("module-search", ""), releases)


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


@bp.get("/ui/kernel-modules")
def module_results() -> str:
    choices = Choices(
        version=request.args.get("version", ""),
        arch=request.args.get("arch", ""),
        modules=tuple(request.args.getlist("modules")),
    )
    search = request.args.get("q", "")
    return render_template("_module_results.html", **_module_context(choices, search, Releases()))


# --- the final page -------------------------------------------------------------------------


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


def _final_page(choices: Choices, schematic: Schematic | None, releases: Releases) -> Response:
    svc = services()
    if schematic is None:
        overlay = releases.overlay(choices.version, choices.board) if choices.board else None
        body = choices.schematic_text(overlay.image if overlay else "")
        try:
            schematic = parse_schematic(body, max_bytes=svc.settings.max_schematic_bytes)
        except SchematicError as error:
            return _cmdline_error(choices, releases, str(error))
        if overlay is not None:
            try:
                check_overlay_options(overlay, schematic.overlay.options)
            except InvalidRequest as error:
                return _step_page(
                    "cmdline",
                    choices,
                    releases,
                    _("Overlay options: %(problem)s.", problem=error),
                    "field-overlay-options",
                )
        schematic_id = save_schematic(svc.store, schematic)
    else:
        schematic_id = choices.schematic_id
    version = choices.version
    image_base = f"{external_url()}/image/{schematic_id}/{version}"

    def inspect(path: str) -> tuple[str, str]:
        """(why `path` cannot be built or "", its sha256 when built already or "")."""
        try:
            plan = make_plan(
                svc.store, schematic, schematic_id, version, parse_profile(path), svc.settings
            )
        except InvalidRequest as error:
            return _("Cannot be built from this schematic: %(problem)s.", problem=error), ""
        except FactoryError as error:
            return _("Not available from this factory yet: %(problem)s.", problem=error), ""
        built = engine().manifest(plan.key)
        return "", built.sha256 if built else ""

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


def _cmdline_error(choices: Choices, releases: Releases, message: str) -> Response:
    """The schematic parser refused what the last step produced: show that step again."""
    field = "field-cmdline"
    # Everything but the options text is generated and well-formed, so a YAML error when
    # there are options is about them.
    options = choices.target == "sbc" and choices.overlay_options.strip()
    if options and "customization" not in message:
        message = _("Overlay options: %(problem)s", problem=options_message(message))
        field = "field-overlay-options"
    return _step_page("cmdline", choices, releases, message, field)


def _has_builds_api() -> bool:
    """Whether this app serves `POST /builds` (the build-progress API)."""
    return any(
        rule.rule == BUILDS_ROUTE and "POST" in (rule.methods or ())
        for rule in current_app.url_map.iter_rules()
    )


def _message_page(title: str, message: str, status: int) -> Response:
    return Response(render_template("message.html", title=title, message=message), status=status)


# --- upload ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadForm:
    version: str
    platform: str
    arch: str
    secureboot: bool


def _upload_page(form: UploadForm, error: str, status: int) -> Response:
    releases = Releases()
    newest_first = sorted(releases.versions, key=version_key, reverse=True)
    html = render_template(
        "upload.html",
        title=_("Upload a schematic"),
        error=error,
        form=form,
        versions=newest_first,
        platforms=list(PLATFORMS.values()),
        arches=_upload_arches(form.version, releases),
        max_bytes=services().settings.max_schematic_bytes,
    )
    return Response(html, status=status)


def _upload_problem(form: UploadForm, schematic: Schematic, releases: Releases) -> str:
    """What in the file or the form this factory cannot build, as a sentence ("" if none)."""
    if form.version not in releases.versions:
        return _("Release %(version)s is not available here.", version=form.version)
    arches = _upload_arches(form.version, releases)
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


def _upload_arches(version: str, releases: Releases) -> list[ArchOption]:
    return arch_options(Choices(target="metal", version=version), releases)


@bp.get("/upload")
def upload_form() -> Response:
    versions = sorted(Releases().versions, key=version_key, reverse=True)
    stable = [v for v in versions if "-" not in v]
    default = (stable or versions or [""])[0]
    return _upload_page(UploadForm(default, "metal", "amd64", False), "", 200)


@bp.post("/upload")
def upload() -> Any:
    svc = services()
    limit = svc.settings.max_schematic_bytes
    load_small_body(limit + svc.settings.max_form_bytes, "schematic upload")
    form = UploadForm(
        version=request.form.get("version", ""),
        platform=request.form.get("platform", "metal"),
        arch=request.form.get("arch", "amd64"),
        secureboot=request.form.get("secureboot") == "true",
    )
    upload = request.files.get("schematic")
    if upload is None or not upload.filename:
        return _upload_page(form, _("Choose a schematic file to upload."), 400)
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        message = _("The file is larger than the limit of %(count)s bytes.", count=limit)
        return _upload_page(form, message, 400)
    try:
        schematic = parse_schematic(data, max_bytes=limit)
    except SchematicError as error:
        return _upload_page(form, explain_schematic_error(str(error)), 400)
    releases = Releases()
    problem = _upload_problem(form, schematic, releases)
    if problem:
        return _upload_page(form, problem, 400)
    schematic_id = save_schematic(svc.store, schematic)
    choices = Choices(
        target="metal" if form.platform == "metal" else "cloud",
        version=form.version,
        platform=form.platform,
        arch=form.arch,
        secureboot=form.secureboot,
        schematic_id=schematic_id,
    ).pin(schematic)
    return redirect(wizard_url(choices), 303)
