"""The web form through Flask's test client, on a synthetic release with the bundled
extensions: steps, redirects, validation, the final page, upload and security headers.
(Real browser tests: test_ui_browser.py.)"""

from __future__ import annotations

import re
from html import unescape
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask.testing import FlaskClient

from factory import create_app, ui
from factory.page_headers import CONTENT_SECURITY_POLICY
from factory.ui_steps import search_modules
from tests.workers.releases.fakes import save_fake_release
from workers import engine as engine_module
from workers.catalog import install_bundled_extensions
from workers.errors import InvalidRequest, NotImplementedYet
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import Kind
from workers.settings import Settings
from workers.store import LocalStore

FINAL_METAL = (
    "target=metal&version=v1.0.0&arch=amd64&extensions=factory%2Fhello&modules=zram"
    "&cmdline=console%3DttyS0&cmdline-set=true"
)
SAME_AS_YAML = b"""customization:
  extraKernelArgs: [console=ttyS0]
  systemExtensions:
    officialExtensions: [factory/hello]
  kernelModules: [zram]
"""


def _quiet(message: str) -> None:
    """Progress sink that shows nothing."""


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    settings = Settings(
        data_dir=tmp_path / "data",
        external_url="http://factory.example",
        pxe_url="http://pxe.example",
    )
    store = LocalStore(settings.data_dir / "store")
    release = save_fake_release(store, "v1.0.0", tmp_path)
    install_bundled_extensions(settings, store, release, _quiet)
    return create_app(settings, store=store).test_client()


def _h1(html: str) -> str:
    found = re.search(r"<h1>(.*?)</h1>", html)
    assert found is not None
    return found.group(1)


def _schematic_id(html: str) -> str:
    found = re.search(r'<code id="schematic-id">([0-9a-f]{64})</code>', html)
    assert found is not None, html
    return found.group(1)


def test_pages_carry_a_strict_content_security_policy(client: FlaskClient) -> None:
    for path in ("/", "/upload", f"/?{FINAL_METAL}"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY
        html = response.get_data(as_text=True)
        # No inline script or style anywhere: the policy would block it.
        assert "<script>" not in html
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert " style=" not in html
        assert "<style" not in html


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("", "Hardware type"),
        ("target=metal", "Release version"),
        ("target=cloud&version=v1.0.0", "Cloud platform"),
        ("target=sbc&version=v1.0.0", "Board"),
        ("target=metal&version=v1.0.0", "Architecture"),
        ("target=metal&version=v1.0.0&arch=amd64", "System extensions"),
        ("target=metal&version=v1.0.0&arch=amd64&extensions=-", "Kernel modules"),
        (
            "target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=-",
            "Kernel arguments and boot",
        ),
        (FINAL_METAL, "Your image"),
    ],
)
def test_each_step_is_a_bookmarkable_url(client: FlaskClient, query: str, title: str) -> None:
    response = client.get(f"/?{query}")

    assert response.status_code == 200
    assert _h1(response.get_data(as_text=True)) == title


def test_a_submitted_step_redirects_to_the_next_steps_clean_url(client: FlaskClient) -> None:
    response = client.get("/?target=metal&version=v1.0.0&from=version")

    assert response.status_code == 303
    assert response.headers["Location"] == "/?target=metal&version=v1.0.0"


def test_back_shows_the_earlier_step_prefilled_and_keeps_the_rest(client: FlaskClient) -> None:
    html = client.get(f"/?{FINAL_METAL}&step=extensions").get_data(as_text=True)

    assert _h1(html) == "System extensions"
    assert re.search(r'value="factory/hello"\s+aria-describedby="[^"]+" checked', html)
    assert '<input type="hidden" name="modules" value="zram">' in html
    # Submitting it again goes on to the next step, not past it.
    response = client.get(f"/?{FINAL_METAL}&from=extensions")
    assert response.headers["Location"].endswith("&step=modules")


def test_the_final_page_stores_the_same_schematic_as_the_api(client: FlaskClient) -> None:
    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)
    expected = client.post("/schematics", data=SAME_AS_YAML).get_json()

    sid = _schematic_id(html)
    assert sid == expected["id"]
    assert client.get(f"/schematics/{sid}").status_code == 200
    assert expected["schematic"] in html  # the canonical YAML, shown as is


def test_showing_the_final_page_stores_its_schematic_and_nothing_else(
    client: FlaskClient, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path / "data" / "store")
    before = set(store.list(""))
    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)
    # No plan blobs (the schematic extension), no extension resolution, no module index:
    # only a build may write those.
    assert set(store.list("")) - before == {f"schematics/{_schematic_id(html)}"}


def test_the_final_page_links_every_metal_asset(client: FlaskClient) -> None:
    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)
    sid = _schematic_id(html)
    base = f"http://factory.example/image/{sid}/v1.0.0"

    for path in (
        "metal-amd64.iso",
        "metal-amd64.raw.zst",
        "metal-amd64.qcow2",
        "kernel-amd64",
        "cmdline-metal-amd64",
        "initramfs-amd64.xz",
        "metal-amd64-uki.efi",
    ):
        assert f'href="{base}/{path}"' in html
        for suffix in (".sha256", ".sha512", ".sigstore.json", ".spdx.json", ".intoto.jsonl"):
            assert f'href="{base}/{path}{suffix}"' in html
        assert f"curl -LO {base}/{path}</code>" in html
    assert f"http://pxe.example/pxe/{sid}/v1.0.0/metal-amd64</code>" in html
    assert f"factory.example/metal-installer/{sid}:v1.0.0</code>" in html


def test_assets_the_factory_cannot_build_say_why(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse_isos(*args: Any, **kwargs: Any) -> Plan:
        profile = args[4]
        if profile.kind is Kind.ISO:
            raise NotImplementedYet(f"iso assets are not built yet: {profile.path}")
        return make_plan(*args, **kwargs)

    monkeypatch.setattr(engine_module, "make_plan", refuse_isos)

    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)

    iso = html[html.index('id="asset-metal-amd64-iso"') : html.index('id="asset-metal-amd64-raw')]
    assert "Not available from this factory yet: iso assets are not built yet: " in iso
    assert html.count("Not available from this factory yet") == 1


def test_the_users_mistakes_are_not_blamed_on_the_factory(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5: an asset the schematic itself rules out says so."""

    def refuse_isos(*args: Any, **kwargs: Any) -> Plan:
        if args[4].kind is Kind.ISO:
            raise InvalidRequest("the schematic asks for something isos cannot do")
        return make_plan(*args, **kwargs)

    monkeypatch.setattr(engine_module, "make_plan", refuse_isos)

    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)

    iso = html[html.index('id="asset-metal-amd64-iso"') : html.index('id="asset-metal-amd64-raw')]
    assert (
        "Cannot be built from this schematic: the schematic asks for something isos cannot do."
    ) in iso
    assert "Not available from this factory" not in html


def test_the_final_page_says_how_to_install_upgrade_and_verify(client: FlaskClient) -> None:
    """Finding 6."""
    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)
    sid = _schematic_id(html)
    installer = f"factory.example/metal-installer/{sid}:v1.0.0"

    assert f"talosctl upgrade --nodes &lt;node&gt; --image {installer}</code>" in html
    assert f"    image: {installer}</code>" in html
    assert 'href="http://factory.example/oci/cosign/signing-key.pub"' in html
    assert "cosign verify-blob --key signing-key.pub" in html
    assert "the kernel and initramfs" in html
    assert "signing-cert.pem" not in html  # no Secure Boot chosen

    secure = client.get(f"/?{FINAL_METAL}&secureboot=true").get_data(as_text=True)
    assert 'href="http://factory.example/secureboot/signing-cert.pem"' in secure
    assert "setup mode" in secure
    assert "the signed unified kernel image" in secure
    assert "kernel and initramfs" not in secure


def test_the_schematic_download_has_a_yaml_name(client: FlaskClient) -> None:
    """Finding 12."""
    html = client.get(f"/?{FINAL_METAL}").get_data(as_text=True)
    sid = _schematic_id(html)

    assert f'download="schematic-{sid[:12]}.yaml"' in html


def test_back_and_save_keep_the_steps_choices(client: FlaskClient) -> None:
    """Finding 7: Back submits the step; chips are links; the summary is one click away."""
    html = client.get(f"/?{FINAL_METAL}&step=extensions").get_data(as_text=True)
    assert '<button type="submit" name="step" value="arch" class="secondary">Back</button>' in html
    assert 'value="final" class="secondary" id="to-final">Save and show the image' in html
    chip = r'<li><a href="/\?target=metal[^"]*&amp;step=version">Release version</a>'
    assert re.search(chip, html)

    changed = FINAL_METAL.replace("extensions=factory%2Fhello", "extensions=factory%2Fdummy-module")
    back = client.get(f"/?{changed}&from=extensions&step=arch")
    assert back.status_code == 303
    assert "extensions=factory%2Fdummy-module" in back.headers["Location"]
    assert _h1(client.get(back.headers["Location"]).get_data(as_text=True)) == "Architecture"

    save = client.get(f"/?{changed}&from=extensions&step=final")
    assert save.status_code == 303
    final = client.get(save.headers["Location"]).get_data(as_text=True)
    assert _h1(final) == "Your image"
    assert "factory/dummy-module" in final


def test_save_is_not_offered_while_a_step_is_open(client: FlaskClient) -> None:
    html = client.get("/?target=metal&version=v1.0.0&arch=amd64").get_data(as_text=True)
    assert "Save and show the image" not in html
    shown = client.get("/?target=metal&version=v1.0.0&arch=amd64&step=final")
    assert _h1(shown.get_data(as_text=True)) == "System extensions"


def test_quoted_kernel_arguments_stay_whole(client: FlaskClient) -> None:
    """Finding 10."""
    query = FINAL_METAL.replace("cmdline=console%3DttyS0", "cmdline=" + quote('foo="a b" c=1'))

    html = client.get(f"/?{query}").get_data(as_text=True)

    assert '- foo="a b"\n' in unescape(html)
    assert "- c=1\n" in html


def test_the_focus_ring_has_enough_contrast_and_disabled_choices_are_dimmed() -> None:
    """Finding 11: WCAG 2.2 asks 3:1 for a focus indicator against the page."""
    css = (Path(ui.__file__).parent / "static" / "css" / "factory.css").read_text()
    light = css[: css.index("@media (prefers-color-scheme: dark)")]
    dark = css[css.index("@media (prefers-color-scheme: dark)") :]

    def var(block: str, name: str) -> str:
        found = re.search(rf"--{name}: (#[0-9a-f]{{6}})", block)
        assert found is not None, name
        return found.group(1)

    assert _contrast(var(light, "focus"), var(light, "bg")) >= 3
    assert _contrast(var(dark, "focus"), var(dark, "bg")) >= 3
    assert re.search(r"input:disabled \+ label \{[^}]*opacity", css)
    assert "[hidden] { display: none !important; }" in css  # copy buttons stay hidden


def _contrast(one: str, two: str) -> float:
    def luminance(color: str) -> float:
        channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(one), luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_cloud_and_secureboot_choices_change_the_assets(client: FlaskClient) -> None:
    query = (
        "target=cloud&platform=azure&version=v1.0.0&arch=amd64&secureboot=true"
        "&extensions=-&modules=-&cmdline-set=true"
    )
    html = client.get(f"/?{query}").get_data(as_text=True)

    assert "/azure-amd64-secureboot.vhd.xz" in html
    assert "/azure-amd64-secureboot.iso" not in html  # azure boots from disk only
    assert "/pxe/" not in html
    assert "/azure-installer-secureboot/" in html


def test_arm64_is_offered_only_when_the_release_has_it(client: FlaskClient) -> None:
    html = client.get("/?target=metal&version=v1.0.0").get_data(as_text=True)

    assert re.search(r'id="arch-arm64" value="arm64"\s+disabled', html)
    assert "Release v1.0.0 has no arm64 build." in html
    response = client.get("/?target=metal&version=v1.0.0&arch=arm64")
    assert response.status_code == 400
    assert _h1(response.get_data(as_text=True)) == "Architecture"


@pytest.mark.parametrize(
    ("query", "title", "message"),
    [
        ("target=moon", "Hardware type", "&#34;moon&#34; is not a hardware type this form knows."),
        ("target=metal&version=v9.9.9", "Release version", "Release v9.9.9 is not available here."),
        (
            "target=cloud&version=v1.0.0&platform=metal",
            "Cloud platform",
            "&#34;metal&#34; is not a cloud platform this form knows.",
        ),
        (
            "target=metal&version=v1.0.0&arch=amd64&extensions=factory%2Fnope",
            "System extensions",
            "Not offered for v1.0.0 (amd64): factory/nope.",
        ),
        (
            "target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=nope",
            "Kernel modules",
            "Release v1.0.0 (amd64) has no module named nope.",
        ),
    ],
)
def test_unusable_values_show_their_step_with_the_reason(
    client: FlaskClient, query: str, title: str, message: str
) -> None:
    response = client.get(f"/?{query}")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert _h1(html) == title
    assert message in html


def test_unknown_overlay_options_are_refused_at_their_step(
    client: FlaskClient, tmp_path: Path
) -> None:
    """Finding 5: not a schematic ID and then "not available" on every download."""
    query = urlencode(
        {
            "target": "sbc",
            "version": "v1.0.0",
            "board": "testboard",
            "arch": "amd64",
            "extensions": "-",
            "modules": "-",
            "overlay-options": "bogus: x",
            "cmdline-set": "true",
        }
    )
    response = client.get(f"/?{query}")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert _h1(html) == "Kernel arguments and boot"
    assert 'Overlay options: overlay "testboard" has no option "bogus"' in unescape(html)
    assert re.search(r'id="field-overlay-options"[^>]*aria-invalid="true"', html)
    assert not list((tmp_path / "data" / "store").rglob("schematics/*"))


def test_bad_overlay_options_are_reported_on_the_options_field(client: FlaskClient) -> None:
    query = urlencode(
        {
            "target": "sbc",
            "version": "v1.0.0",
            "board": "testboard",
            "arch": "amd64",
            "extensions": "-",
            "modules": "-",
            "overlay-options": "- a list",
            "cmdline-set": "true",
        }
    )
    response = client.get(f"/?{query}")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert _h1(html) == "Kernel arguments and boot"
    link = '<a href="#field-overlay-options">Overlay options: yaml: construct errors: line 1:'
    assert link in html
    assert re.search(r'id="field-overlay-options"[^>]*aria-invalid="true"', html)


def test_board_schematic_carries_the_overlay(client: FlaskClient) -> None:
    query = urlencode(
        {
            "target": "sbc",
            "version": "v1.0.0",
            "board": "testboard",
            "arch": "amd64",
            "extensions": "-",
            "modules": "-",
            "overlay-options": "configTxt: hello",
            "cmdline-set": "true",
        }
    )
    html = client.get(f"/?{query}").get_data(as_text=True)
    sid = _schematic_id(html)

    stored = client.get(f"/schematics/{sid}").get_data(as_text=True)
    assert stored == (
        "overlay:\n"
        "    image: factory/testboard\n"
        "    name: testboard\n"
        "    options:\n"
        "        configTxt: hello\n"
        "customization: {}\n"
    )
    assert "/metal-amd64.raw.xz" in html


def test_module_search_ranks_prefixes_first_and_bounds_the_list() -> None:
    names = ["a_zram", "zram", "zsmalloc", "zram_extra", "other"]

    assert search_modules(names, "ZRAM", [], 10) == (["zram", "zram_extra", "a_zram"], 3)
    assert search_modules(names, "zram", ["zram"], 1) == (["zram_extra"], 2)
    assert search_modules(names, "crc64-rock", [], 5) == ([], 0)


def test_module_fragment_lists_matches_without_the_chosen_ones(client: FlaskClient) -> None:
    response = client.get("/ui/kernel-modules?version=v1.0.0&arch=amd64&q=crc&modules=crc64")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="crc64_rocksoft"' in html
    assert 'value="crc64"' not in html
    assert "1 matching “crc”." in html


def test_module_step_searches_on_the_server_without_scripts(client: FlaskClient) -> None:
    query = "target=metal&version=v1.0.0&arch=amd64&extensions=-&modules=zram"
    html = client.get(f"/?{query}&step=modules&module-search=zs").get_data(as_text=True)

    assert 'id="mod-chosen-zram" value="zram" checked' in html
    assert 'id="mod-zsmalloc" value="zsmalloc"' in html
    assert 'id="mod-crc64"' not in html


def test_the_module_step_lists_no_modules_before_a_search(client: FlaskClient) -> None:
    """Finding 8: a count and a search box, not 60 checkboxes down a phone screen."""
    html = client.get("/?target=metal&version=v1.0.0&arch=amd64&extensions=-").get_data(True)

    assert _h1(html) == "Kernel modules"
    assert 'id="module-search"' in html
    assert 'id="mod-' not in html
    assert "Type part of a module's name" in unescape(html)
    fragment = client.get("/ui/kernel-modules?version=v1.0.0&arch=amd64&q=").get_data(True)
    assert 'id="mod-' not in fragment


def test_a_pinned_schematic_skips_the_content_steps(client: FlaskClient) -> None:
    sid = client.post("/schematics", data=b"customization:\n  meta:\n    - {key: 10, value: x}\n")
    schematic_id = sid.get_json()["id"]

    html = client.get(f"/?schematic-id={schematic_id}&target=metal").get_data(as_text=True)
    assert _h1(html) == "Release version"
    final = client.get(f"/?schematic-id={schematic_id}&target=metal&version=v1.0.0&arch=amd64")
    assert _schematic_id(final.get_data(as_text=True)) == schematic_id


def test_an_unknown_pinned_schematic_is_a_404_page(client: FlaskClient) -> None:
    response = client.get(f"/?schematic-id={'0' * 64}")

    assert response.status_code == 404
    assert f"There is no schematic with ID {'0' * 64} here." in response.get_data(as_text=True)


def _upload(client: FlaskClient, data: bytes, **fields: str) -> tuple[int, str, str]:
    form = {"version": "v1.0.0", "platform": "metal", "arch": "amd64", **fields}
    response = client.post(
        "/upload",
        data={**form, "schematic": (BytesIO(data), "schematic.yaml")},
        content_type="multipart/form-data",
    )
    return response.status_code, response.headers.get("Location", ""), response.get_data(True)


def test_upload_lands_on_the_final_page_of_that_schematic(client: FlaskClient) -> None:
    body = b"customization:\n  meta:\n    - key: 0xa\n      value: hello\n"
    expected = client.post("/schematics", data=body).get_json()["id"]

    status, location, _ = _upload(client, body, secureboot="true")

    assert status == 303
    assert location == (
        f"/?schematic-id={expected}&target=metal&version=v1.0.0&arch=amd64&secureboot=true"
    )
    assert _schematic_id(client.get(location).get_data(as_text=True)) == expected


def test_upload_of_a_board_schematic_shows_board_images(client: FlaskClient) -> None:
    body = b"overlay:\n  image: factory/testboard\n  name: testboard\n"

    _, location, _ = _upload(client, body, platform="aws")

    assert "target=sbc" in location
    assert "/metal-amd64.raw.xz" in client.get(location).get_data(as_text=True)


def test_a_bad_upload_is_explained_in_words_once(client: FlaskClient) -> None:
    """Finding 9: not the parser's go-yaml jargon, and not twice."""
    body = b"customization:\n  bogus: 1\n  extraKernelArgs: nope\n"

    status, _, html = _upload(client, body)

    assert status == 400
    assert '<form method="post" action="/upload"' in html
    words = (
        "Line 2: a schematic has no setting “bogus” inside “customization”. "
        "Line 3: “customization.extraKernelArgs” must be a list of texts, not the value “nope”."
    )
    assert html.count(words) == 1
    assert "construct errors" not in html
    assert 'aria-describedby="error-message schematic-help" aria-invalid="true"' in html


def test_an_upload_naming_an_unknown_extension_is_refused_at_upload(
    client: FlaskClient, tmp_path: Path
) -> None:
    """Finding 5: the user's mistake, said at upload, nothing stored."""
    body = b"customization:\n  systemExtensions:\n    officialExtensions: [factory/nope]\n"

    status, _, html = _upload(client, body)

    assert status == 400
    assert (
        "Your schematic names extensions that release v1.0.0 (amd64) does not offer: factory/nope."
    ) in html
    assert not list((tmp_path / "data" / "store").rglob("schematics/*"))


def test_the_upload_page_disables_architectures_the_release_lacks(client: FlaskClient) -> None:
    """Finding 11: as the wizard does."""
    html = client.get("/upload").get_data(as_text=True)

    assert re.search(r'id="arch-arm64" value="arm64"\s+disabled', html)
    assert "Release v1.0.0 has no arm64 build." in html
    status, _, refused = _upload(client, b"customization: {}\n", arch="arm64")
    assert status == 400
    assert "Release v1.0.0 has no arm64 build." in refused


def test_upload_without_a_file_or_over_the_limit_is_refused(
    client: FlaskClient, tmp_path: Path
) -> None:
    response = client.post("/upload", data={"version": "v1.0.0"})
    assert response.status_code == 400
    assert "Choose a schematic file to upload." in response.get_data(as_text=True)

    settings = Settings(data_dir=tmp_path / "small", max_schematic_bytes=10)
    small = create_app(settings, store=LocalStore(tmp_path / "small-store")).test_client()
    status, _, html = _upload(small, b"customization: {}\n")
    assert status == 400
    assert "The file is larger than the limit of 10 bytes." in html


def _copy_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]*)" id="edit-copy">Edit a copy of this schematic</a>', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_a_pinned_schematic_can_be_copied_into_the_wizard(client: FlaskClient) -> None:
    body = (
        b"customization:\n  extraKernelArgs: [console=ttyS0]\n"
        b"  systemExtensions:\n    officialExtensions: [factory/hello]\n"
        b"  kernelModules: [zram]\n"
    )
    sid = client.post("/schematics", data=body).get_json()["id"]
    pinned = client.get(f"/?schematic-id={sid}&target=metal&version=v1.0.0&arch=amd64")
    link = _copy_link(pinned.get_data(as_text=True))
    assert link is not None
    assert "schematic-id" not in link

    step = client.get(link).get_data(as_text=True)
    assert _h1(step) == "System extensions"
    assert re.search(r'value="factory/hello"[^>]*checked', step)

    # Unchanged, the copy is the same schematic; with one step changed, a new one.
    final = client.get(link.replace("&step=extensions", "")).get_data(as_text=True)
    assert _schematic_id(final) == sid
    changed = client.get(link.replace("&step=extensions", "").replace("zram", "dummy"))
    new_id = _schematic_id(changed.get_data(as_text=True))
    assert new_id != sid
    assert "- dummy" in client.get(f"/schematics/{new_id}").get_data(as_text=True)


@pytest.mark.parametrize(
    "body",
    [
        b"customization:\n  meta:\n    - {key: 10, value: x}\n",
        b"overlay:\n  image: example.org/other-image\n  name: testboard\n",
    ],
    ids=["meta-values", "foreign-overlay-image"],
)
def test_no_copy_link_when_the_wizard_cannot_show_everything(
    client: FlaskClient, body: bytes
) -> None:
    sid = client.post("/schematics", data=body).get_json()["id"]
    html = client.get(f"/?schematic-id={sid}&target=metal&version=v1.0.0&arch=amd64")
    text = html.get_data(as_text=True)
    assert _schematic_id(text) == sid
    assert _copy_link(text) is None


def test_the_extensions_catalog_lists_and_searches_every_extension(client: FlaskClient) -> None:
    html = client.get("/catalog").get_data(as_text=True)

    assert _h1(html) == "Extensions catalog"
    for name in ("factory/hello", "factory/dummy-module", "factory/firmware-demo"):
        assert f">{name}</a>" in html
    assert "<dt>Author</dt>" in html
    assert "<dt>Origin</dt><dd>bundled</dd>" in html
    assert re.search(r"<code>sha256:[0-9a-f]{64}</code>", html)

    found = client.get("/catalog?q=program").get_data(as_text=True)
    assert ">factory/hello</a>" in found
    assert ">factory/dummy-module</a>" not in found
    assert "1 of 3 extensions match “program”." in found
    assert client.get("/catalog?version=v9.9.9").status_code == 404


def test_an_extension_page_lists_what_it_installs(client: FlaskClient) -> None:
    catalog = client.get("/catalog?q=program").get_data(as_text=True)
    link = re.search(r'<a href="(/catalog/[0-9a-f]{64})">factory/hello</a>', catalog)
    assert link is not None

    html = client.get(link.group(1)).get_data(as_text=True)

    assert "<code>/usr/local/bin/hello</code>" in html
    assert client.get("/catalog/" + "0" * 64).status_code == 404
    assert client.get("/catalog/nothex").status_code == 404


def test_an_oversized_upload_is_413_before_its_body_is_read(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", max_schematic_bytes=1000, max_form_bytes=500)
    client = create_app(settings, store=LocalStore(tmp_path / "store")).test_client()
    body = BytesIO(b"x" * 10_000_000)
    response = client.post(
        "/upload",
        input_stream=body,
        content_type="multipart/form-data; boundary=b",
        headers={"Content-Length": "10000000"},
    )
    assert response.status_code == 413
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == (
        "schematic upload is larger than the limit of 1500 bytes\n"
    )
    assert body.tell() == 0  # refused from the declared length alone

    chunked = BytesIO(b"--b\r\n" + b"x" * 100_000)
    response = client.post(
        "/upload",
        input_stream=chunked,
        content_type="multipart/form-data; boundary=b",
        headers={"Transfer-Encoding": "chunked"},
        environ_base={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert "larger than the limit of 1500 bytes" in response.get_data(as_text=True)
    assert chunked.tell() <= 1501
    assert list((tmp_path / "store").rglob("schematics/*")) == []
