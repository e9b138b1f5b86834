"""The extension upload page, for holders of an upload token (linked from the catalog).

- `GET /catalog/upload`: a form (token, file, namespace, architecture) that works without
  JavaScript; the token may instead come as `Authorization: Bearer <token>`.
- `POST /catalog/upload` (multipart): the same checks and storing as `POST /extensions`
  (`factory.catalog.store_upload`) → 303 to the new extension's catalog page; a
  refusal comes back as the form with the reason in words (`factory.extension_words`) on
  the field it is about: 401 for a missing or wrong token, 403 for one that may not upload
  (or publish in that namespace), 400 for a file that is not a valid extension.

The page's script sends the form itself, so a refusal keeps the chosen file and focus moves
to the reason (as the schematic upload page does).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from factory.auth import authorize
from factory.engine import engine
from factory.extension_uploads import store_upload
from factory.extension_words import explain_extension_error
from factory.i18n import _
from factory.page_headers import catalog_page, security_headers
from workers.errors import Forbidden, InvalidRequest, Unauthorized
from workers.releases.versions import ARCHES
from workers.tenancy.tokens import ROLE_UPLOAD

bp = Blueprint("extension_upload", __name__)
bp.after_request(security_headers)
FIELD_TOKEN = "field-token"
FIELD_FILE = "field-extension"
FIELD_NAMESPACE = "field-namespace"


@dataclass(frozen=True)
class ExtensionForm:
    namespace: str
    arch: str


def _page(form: ExtensionForm, status: int, error: str = "", field: str = "") -> Response:
    return catalog_page(
        "extension_upload.html",
        status,
        title=_("Upload an extension"),
        form=form,
        arches=ARCHES,
        error=error,
        error_field=field,
        max_bytes=engine().settings.max_extension_bytes,
    )


@bp.get("/catalog/upload")
def upload_form() -> Response:
    return _page(ExtensionForm(engine().settings.extensions_namespace, "amd64"), 200)


def _token_refusal(error: Unauthorized, typed: bool) -> str:
    if not typed and error.reason == "invalid_request":
        return _("Enter your upload token: uploading an extension needs one.")
    return _(
        "That token is unknown, expired or revoked. Ask an administrator for a token with "
        "the upload role."
    )


@bp.post("/catalog/upload")
def upload() -> Response | WerkzeugResponse:
    eng = engine()
    form = ExtensionForm(
        namespace=request.form.get("namespace", "").strip() or eng.settings.extensions_namespace,
        arch=request.form.get("arch", "amd64"),
    )
    token = request.form.get("token", "").strip()
    header = f"Bearer {token}" if token else request.headers.get("Authorization")
    try:
        who = authorize(eng.store, header, ROLE_UPLOAD, "uploading an extension")
    except Unauthorized as error:
        return _page(form, 401, _token_refusal(error, bool(token)), FIELD_TOKEN)
    except Forbidden:
        message = _("This token may not upload extensions: that needs the upload role.")
        return _page(form, 403, message, FIELD_TOKEN)
    if form.arch not in ARCHES:
        message = _('"%(value)s" is not an architecture this form knows.', value=form.arch)
        return _page(form, 400, message, FIELD_FILE)
    chosen = request.files.get("extension")
    if chosen is None or not chosen.filename:
        return _page(form, 400, _("Choose an extension file to upload."), FIELD_FILE)
    try:
        record = store_upload(who, form.namespace, form.arch, chosen.stream)
    except Forbidden:
        message = _(
            "Your token may not publish in the namespace “%(namespace)s”: it belongs to "
            "another token, or is reserved.",
            namespace=form.namespace,
        )
        return _page(form, 403, message, FIELD_NAMESPACE)
    except InvalidRequest as error:
        if str(error).startswith("invalid namespace"):
            message = _(
                "“%(namespace)s” is not a namespace name: use lowercase letters, digits, "
                "“.”, “_” and “-”.",
                namespace=form.namespace,
            )
            return _page(form, 400, message, FIELD_NAMESPACE)
        return _page(form, 400, explain_extension_error(str(error)), FIELD_FILE)
    # Its catalog page, where it shows what it installs (and the catalog lists it).
    return redirect(url_for("extension_pages.extension", digest=record.digest), 303)
