"""The web form's language: English, or German (`factory/translations/`), via Flask-Babel.

Chosen per request: `?lang=<code>` (remembered in the `lang` cookie for a year), else the
cookie, else the browser's `Accept-Language`, else English. The API, its error messages and
data (extension descriptions, release names) stay as they are.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, request
from flask_babel import Babel, get_locale, gettext

LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT_LANGUAGE = "en"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS = Path(__file__).parent / "translations"


def _(text: str, **values: object) -> str:
    """`text` in the page's language, `%(name)s` filled from `values` (marks it for
    translation: `factory/translations/`)."""
    return str(gettext(text, **values))


def select_language() -> str:
    asked = request.args.get("lang", "")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(COOKIE, "")
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def remember_language(response: Response) -> Response:
    """After a page asked with `?lang=`: keep that language for the next pages."""
    asked = request.args.get("lang", "")
    if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True)
    return response


def language_links() -> list[tuple[str, str, str, bool]]:
    """(code, name, URL of this page in it, whether it is the current one) per language."""
    current = str(get_locale() or DEFAULT_LANGUAGE)
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return [
        (code, name, f"{request.path}?{urlencode([*query, ('lang', code)])}", code == current)
        for code, name in LANGUAGES.items()
    ]


def init_i18n(app: Flask) -> None:
    Babel(
        app,
        locale_selector=select_language,
        default_translation_directories=str(TRANSLATIONS),
    )
    app.jinja_env.globals["language_links"] = language_links
    app.jinja_env.globals["current_language"] = lambda: str(get_locale() or DEFAULT_LANGUAGE)
