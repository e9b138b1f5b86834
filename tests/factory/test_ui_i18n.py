"""The web form in two languages: how the language is chosen, and that no page shows an
English word in German (every text and label of each page, in English and German, compared;
data marked `translate="no"`, code and release names aside)."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from factory import create_app
from factory.i18n import TRANSLATIONS
from tests.extensions.builders import hello_members, tar_bytes
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import install_bundled_extensions
from workers.settings import Settings
from workers.store import LocalStore
from workers.tenancy.tokens import ROLE_UPLOAD, create_token

METAL = "target=metal&version=v1.0.0&arch=amd64"
FINAL = f"{METAL}&extensions=factory%2Fhello&modules=zram&cmdline=a%3D1&cmdline-set=true"
BOARD = "target=sbc&version=v1.0.0&board=testboard&arch=amd64&extensions=-&modules=-"
PAGES = [
    "/",
    "/?target=metal",
    "/?target=cloud&version=v1.0.0",
    "/?target=sbc&version=v1.0.0",
    f"/?{METAL}",
    f"/?{METAL}&secureboot=true&extensions=-&modules=-&step=arch",
    "/?target=cloud&version=v1.0.0&platform=aws",
    f"/?{METAL}&extensions=-",
    f"/?{METAL}&extensions=-&step=modules&module-search=z",
    f"/?{METAL}&extensions=-&modules=-",
    f"/?{BOARD}",
    f"/?{FINAL}",
    f"/?{FINAL}&secureboot=true",
    f"/?{FINAL}&step=extensions",
    f"/?{BOARD}&overlay-options={quote('configTxt: x')}&cmdline-set=true",
    "/?target=cloud&version=v1.0.0&platform=aws&arch=amd64&extensions=-&modules=-&cmdline-set=true",
    f"/?{METAL}&extensions=factory%2Fnope",
    "/?schematic-id=" + "0" * 64,
    "/upload",
    "/catalog",
    "/catalog?q=program",
    "/catalog/upload",
]
# Words German shares with English (names of things), allowed in a text both pages show.
SHARED = {
    "release",
    "secure",
    "boot",
    "schematic",
    "id",
    "kernel",
    "iso",
    "initramfs",
    "board",
    "hardware",
    "bootloader",
    "arm",
    "aarch",
    "amd",
    "sha",
    "sigstore",
    "json",
    "yaml",
    "image",
    "factory",
    "testboard",
    "zram",
    "bytes",
    "grub",
    "uefi",
    "bios",
    "ipxe",
    "pxe",
}
SKIPPED_TAGS = {"code", "pre", "script", "style", "option", "optgroup"}
TEXT_ATTRIBUTES = ("aria-label", "data-copied", "data-failed", "data-shown", "data-added")


class _Texts(HTMLParser):
    """The texts a person reads or hears on a page, outside code and `translate="no"`."""

    VOID: ClassVar[set[str]] = {"input", "br", "meta", "link", "img", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.skipping: list[str] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in self.VOID:
            self._attributes(found)
            return
        if self.skipping or tag in SKIPPED_TAGS or found.get("translate") == "no":
            self.skipping.append(tag)
            return
        self._attributes(found)

    def _attributes(self, found: dict[str, str | None]) -> None:
        if not self.skipping:
            self.texts += [found[name] or "" for name in TEXT_ATTRIBUTES if found.get(name)]
            # What the "Build now" script says, handed over by the page.
            self.texts += json.loads(found.get("data-words") or "{}").values()

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and tag in self.VOID:
            return
        if self.skipping:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(" ".join(data.split()))


def _texts(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    return parser.texts


def _quiet(message: str) -> None:
    """Progress sink that shows nothing."""


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    settings = Settings(data_dir=tmp_path / "data")
    store = LocalStore(settings.data_dir / "store")
    release = save_fake_release(store, "v1.0.0", tmp_path)
    install_bundled_extensions(settings, store, release, _quiet)
    return create_app(settings, store=store).test_client()


def _page(client: FlaskClient, path: str, language: str) -> str:
    return client.get(path, headers={"Accept-Language": language}).get_data(as_text=True)


def _extension_page(client: FlaskClient) -> str:
    found = re.search(r'href="(/catalog/[0-9a-f]{64})"', _page(client, "/catalog", "en"))
    assert found is not None
    return found.group(1)


def _english_words_left(english: str, german: str) -> list[str]:
    left = set(_texts(english)) & set(_texts(german))
    return sorted(text for text in left if not _is_a_name(text.removesuffix(" · Image Factory")))


def _is_a_name(text: str) -> bool:
    """A file or extension name (one word with `.`, `-` or `/`), or only shared words."""
    if re.fullmatch(r"\S*[./-]\S*", text):
        return True
    return all(word.lower() in SHARED for word in re.findall(r"[A-Za-z]{2,}", text))


@pytest.mark.parametrize("path", PAGES)
def test_no_page_has_an_untranslated_string_in_german(client: FlaskClient, path: str) -> None:
    english, german = _page(client, path, "en"), _page(client, path, "de")

    assert '<html lang="de">' in german
    assert _texts(german), path
    assert _english_words_left(english, german) == []


def test_the_extension_and_upload_error_pages_are_german_too(client: FlaskClient) -> None:
    path = _extension_page(client)
    assert _english_words_left(_page(client, path, "en"), _page(client, path, "de")) == []

    def refused(language: str) -> str:
        body = b"customization:\n  bogus: 1\n  extraKernelArgs: nope\n"
        form = {"version": "v1.0.0", "platform": "metal", "arch": "amd64"}
        response = client.post(
            "/upload",
            data={**form, "schematic": (BytesIO(body), "schematic.yaml")},
            content_type="multipart/form-data",
            headers={"Accept-Language": language},
        )
        assert response.status_code == 400
        return response.get_data(as_text=True)

    german = refused("de")
    assert "Zeile 3: „customization.extraKernelArgs“ muss eine Liste von Texten sein" in german
    assert _english_words_left(refused("en"), german) == []


def test_the_extension_upload_refusals_are_german_too(client: FlaskClient, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "data" / "store")
    _, token = create_token(store, "uploader", ROLE_UPLOAD)
    no_manifest = tar_bytes(hello_members()[1:])

    def refused(language: str, token: str) -> str:
        response = client.post(
            "/catalog/upload",
            data={
                "token": token,
                "namespace": "mine",
                "extension": (BytesIO(no_manifest), "extension.tar"),
            },
            content_type="multipart/form-data",
            headers={"Accept-Language": language},
        )
        assert response.status_code in (400, 401)
        return response.get_data(as_text=True)

    for sent in ("", token):
        german = refused("de", sent)
        assert _english_words_left(refused("en", sent), german) == []
    assert "Das Archiv hat keine manifest.yaml auf oberster Ebene." in german


def test_the_language_comes_from_the_link_then_the_cookie_then_the_browser(
    client: FlaskClient,
) -> None:
    assert "<h1>Hardware-Art</h1>" in _page(client, "/", "de-AT,de;q=0.9,en;q=0.5")
    assert "<h1>Hardware type</h1>" in _page(client, "/", "fr, en;q=0.5")

    switched = client.get("/?lang=de", headers={"Accept-Language": "en"})
    assert "<h1>Hardware-Art</h1>" in switched.get_data(as_text=True)
    assert "lang=de" in switched.headers["Set-Cookie"]
    # The cookie now wins over the browser's wish.
    assert "<h1>Schematic hochladen</h1>" in _page(client, "/upload", "en")
    assert '<html lang="de">' in _page(client, "/catalog", "en")
    back = client.get("/?lang=en", headers={"Accept-Language": "de"})
    assert "<h1>Hardware type</h1>" in back.get_data(as_text=True)
    # Every page links to itself in each language, keeping its query.
    html = _page(client, "/?target=metal", "en")
    assert 'href="/?target=metal&amp;lang=de" lang="de"' in html


def test_the_compiled_catalog_is_the_po_file_compiled() -> None:
    po = TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)

    assert po.with_suffix(".mo").read_bytes() == compiled.getvalue()
    assert all(message.string for message in catalog if message.id)
