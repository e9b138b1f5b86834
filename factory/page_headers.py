"""What the factory's HTML pages share: the headers each carries (the web form and the
extension pages) and how a catalog page is rendered."""

from __future__ import annotations

from flask import Response, render_template

from factory.i18n import _, remember_language

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def security_headers(response: Response) -> Response:
    remember_language(response)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def catalog_page(template: str, status: int, **context: object) -> Response:
    """A page of the catalog's (the upload page's too), titled "Extensions catalog" unless
    `context` says otherwise."""
    context.setdefault("title", _("Extensions catalog"))
    return Response(render_template(template, **context), status=status)
