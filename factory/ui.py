"""The web form: a step-by-step wizard, a schematic upload page and the final download page.

- `GET /` walks the steps of `factory.wizard` (every choice in the query string; a step's
  form submits with `from=<step>` and is redirected to the next step's clean URL); when all
  choices are made it stores the schematic through `add_schematic`, exactly as
  `POST /schematics` does, and shows its ID, canonical YAML and the download links.
- `GET /ui/kernel-modules` is the module search as an HTML fragment (the module step's
  script swaps it in as the user types; without scripts the step's Search button does it).
- `GET|POST /upload`: a schematic file (multipart) → the same final page; a file the parser
  refuses comes back with its message next to the form (400).

Pages carry a strict Content-Security-Policy: no inline script or style, nothing off-site
(`factory.page_headers`). This module holds the routes; the form's other jobs have their own:
`releases_view` (what the store offers), `ui_checks` (validation), `ui_steps` (one page per
step), `ui_final` (the final page).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from factory.bodies import load_small_body
from factory.engine import engine
from factory.i18n import _
from factory.page_headers import security_headers
from factory.releases_view import Releases
from factory.ui_checks import UploadForm, find_problem, upload_arches, upload_problem
from factory.ui_final import final_page
from factory.ui_steps import message_page, module_context, step_page, wizard_url
from factory.wizard import (
    STEP_FIELDS,
    Choices,
)
from factory.words import explain_schematic_error
from schematics import SchematicError, parse_schematic
from workers.errors import NotFound
from workers.outputs.schematics_store import load_schematic, save_schematic
from workers.planning.profiles import PLATFORMS
from workers.releases.versions import version_key

bp = Blueprint("ui", __name__)


bp.after_request(security_headers)


@bp.get("/")
def wizard() -> Any:
    args = request.args
    choices = Choices.from_query(args.to_dict(flat=False))
    schematic = None
    if choices.schematic_id:
        try:
            schematic = load_schematic(engine().store, choices.schematic_id)
        except NotFound:
            return message_page(
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
        return final_page(choices, schematic, releases)
    return step_page(step, choices, releases, error)


@bp.get("/ui/kernel-modules")
def module_results() -> str:
    choices = Choices(
        version=request.args.get("version", ""),
        arch=request.args.get("arch", ""),
        modules=tuple(request.args.getlist("modules")),
    )
    search = request.args.get("q", "")
    return render_template("_module_results.html", **module_context(choices, search, Releases()))


# --- the final page -------------------------------------------------------------------------


# --- upload ---------------------------------------------------------------------------------


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
        arches=upload_arches(form.version, releases),
        max_bytes=engine().settings.max_schematic_bytes,
    )
    return Response(html, status=status)


@bp.get("/upload")
def upload_form() -> Response:
    versions = sorted(Releases().versions, key=version_key, reverse=True)
    stable = [v for v in versions if "-" not in v]
    default = (stable or versions or [""])[0]
    return _upload_page(UploadForm(default, "metal", "amd64", False), "", 200)


@bp.post("/upload")
def upload() -> Any:
    eng = engine()
    limit = eng.settings.max_schematic_bytes
    load_small_body(limit + eng.settings.max_form_bytes, "schematic upload")
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
    problem = upload_problem(form, schematic, releases)
    if problem:
        return _upload_page(form, problem, 400)
    schematic_id = save_schematic(eng.store, schematic)
    choices = Choices(
        target="metal" if form.platform == "metal" else "cloud",
        version=form.version,
        platform=form.platform,
        arch=form.arch,
        secureboot=form.secureboot,
        schematic_id=schematic_id,
    ).pin(schematic)
    return redirect(wizard_url(choices), 303)
