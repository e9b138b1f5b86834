"""The web form in real headless Chromium against a running factory (`web_factory`: no
external URL configured, on a free port, so every link must come from the request).

Screenshots of every step land in `test-artifacts/browser/` (gitignored) for people to look at.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    FilePayload,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.extensions.builders import file, hello_members, manifest, tar_bytes
from tests.factory.live import LiveFactory
from workers.store import LocalStore
from workers.tenancy.tokens import ROLE_UPLOAD, create_token

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
PHONE = ViewportSize(width=375, height=812)
DESKTOP = ViewportSize(width=1280, height=800)
FINAL_QUERY = (
    "target=metal&version=v1.0.0&arch=amd64&extensions=factory%2Fhello&modules=-&cmdline-set=true"
)
MODULE_SEARCH = re.compile(r"^Search \d+ modules$")  # the label counts the release's modules

# What the walk below chooses, as a schematic for `POST /schematics`.
WALKED_SCHEMATIC = b"""customization:
  extraKernelArgs: [console=ttyS0, factory.poweroff=1]
  systemExtensions:
    officialExtensions: [factory/dummy-module, factory/hello]
  kernelModules: [zram]
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def expected_errors() -> set[str]:
    """Console errors a test provokes on purpose (e.g. the load of a 400 page)."""
    return set()


@pytest.fixture
def page(browser: Browser, expected_errors: set[str]) -> Iterator[Page]:
    """A fresh page; the test fails on any script or console error it did not expect
    (a CSP violation is one)."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    unexpected = [error for error in errors if error not in expected_errors]
    assert not unexpected, f"errors in the page: {unexpected}"


def _failed_load(status: str) -> str:
    return f"Failed to load resource: the server responded with a status of {status}"


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _heading(page: Page) -> str:
    return page.locator("h1").inner_text()


def _next(page: Page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()


def _yaml_file(name: str, data: bytes) -> FilePayload:
    return FilePayload(name=name, mimeType="application/yaml", buffer=data)


def _api_id(live: LiveFactory, body: bytes) -> str:
    return live.create_schematic(body)


def test_walking_the_wizard_gives_the_id_of_the_same_schematic(
    web_factory: LiveFactory, page: Page
) -> None:
    response = page.goto(f"{web_factory.url}/")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert _heading(page) == "Hardware type"
    _shot(page, "01-hardware")

    # Keyboard only: arrows move within the radio group, Enter submits the step.
    page.locator("#target-metal").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#target-cloud").is_checked()
    page.keyboard.press("ArrowUp")
    assert page.locator("#target-metal").is_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert _heading(page) == "Release version"
    assert page.locator("#field-version").input_value() == "v1.0.0"
    _shot(page, "02-version")
    # The focused control is visibly outlined.
    page.get_by_role("button", name="Next").focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    _next(page)

    assert _heading(page) == "Architecture"
    assert page.locator("#arch-amd64").is_checked()
    assert page.locator("#arch-arm64").is_disabled()
    assert page.locator("#arch-arm64-note").inner_text() == "Release v1.0.0 has no arm64 build."
    _shot(page, "03-architecture")
    _next(page)

    assert _heading(page) == "System extensions"
    search = page.get_by_label("Search extensions")
    search.fill("program")  # matches hello's description only
    assert page.locator("#extension-list li:visible").count() == 1
    assert page.locator("#extension-filter-status").inner_text() == "1 of 3 extensions shown"
    page.get_by_label("factory/hello").focus()
    page.keyboard.press("Space")
    search.fill("dummy")
    # Checked items stay visible whatever the filter says.
    assert page.locator("#extension-list li:visible").count() == 2
    page.get_by_label("factory/dummy-module").click()
    _shot(page, "04-extensions")
    _next(page)

    assert _heading(page) == "Kernel modules"
    page.get_by_label(MODULE_SEARCH).fill("zra")
    page.locator("#mod-zram").wait_for()
    page.locator("#mod-zram").check()
    assert page.locator("#module-chosen #mod-zram").is_checked()
    _shot(page, "05-modules")
    _next(page)

    assert _heading(page) == "Kernel arguments and boot"
    page.get_by_label("Extra kernel arguments").fill("console=ttyS0  factory.poweroff=1")
    assert page.locator("#bootloader-auto").is_checked()
    _shot(page, "06-kernel-args")
    _next(page)

    assert _heading(page) == "Your image"
    _shot(page, "07-final")
    shown_id = page.locator("#schematic-id").inner_text()
    assert shown_id == _api_id(web_factory, WALKED_SCHEMATIC)
    stored = web_factory.get(f"/schematics/{shown_id}").decode()
    assert page.locator("#schematic-yaml").inner_text() == stored
    download = page.locator("#asset-kernel-amd64 a.download")
    assert download.get_attribute("href") == (
        f"{web_factory.url}/image/{shown_id}/v1.0.0/kernel-amd64"
    )
    assert page.locator("#pxe-url").inner_text() == (
        f"{web_factory.url}/pxe/{shown_id}/v1.0.0/metal-amd64"
    )
    # "Build now" is offered exactly when the factory serves the build-progress API.
    assert page.locator("button[data-build]").count() == 0 or _has_builds_api(web_factory)
    assert (page.locator(".callout").count() == 1) != _has_builds_api(web_factory)

    # The page's URL is a bookmark: opened afresh, it shows the same schematic.
    bookmark = page.url
    page.goto(bookmark)
    assert page.locator("#schematic-id").inner_text() == shown_id


def _follow(page: Page, url: str) -> int:
    """GET `url` as the browser's session would (redirects followed); its status."""
    response = page.request.get(url, timeout=600_000)
    assert response.body(), url
    return response.status


def test_every_link_on_the_final_page_works_without_an_external_url(
    web_factory: LiveFactory, page: Page
) -> None:
    """Finding 1: the factory serves on a free port with no external URL configured; the
    links are derived from the request and each answers 200."""
    origin = web_factory.url
    assert not origin.endswith(":8080")
    page.goto(f"{origin}/")
    page.get_by_label("Bare-metal machine").check()
    _next(page)
    _next(page)  # the default release
    _next(page)  # amd64
    _next(page)  # no extensions
    _next(page)  # no modules
    _next(page)  # no kernel arguments
    assert _heading(page) == "Your image"
    sid = page.locator("#schematic-id").inner_text()
    image_base = f"{origin}/image/{sid}/v1.0.0"

    links = page.eval_on_selector_all("main a[href]", "links => links.map(a => a.href)")
    kernel = f"{image_base}/kernel-amd64"
    # Each asset's download and checksum files: the kernel's are followed (the others would
    # build ISOs and disk images); every one of them is an absolute link to this server.
    assets = [link for link in links if link.startswith(f"{origin}/image/")]
    # Beside each download: checksums, signature, SBOM and provenance.
    sidecars = [".sha256", ".sha512", ".sigstore.json", ".spdx.json", ".intoto.jsonl"]
    kernel_links = [kernel] + [kernel + suffix for suffix in sidecars]
    assert set(kernel_links) <= set(assets)
    assert len(assets) == 6 * 7  # ISO, raw, qcow2, kernel, cmdline, initramfs, UKI
    followed = [link for link in links if not link.startswith(f"{origin}/image/")]
    followed += kernel_links
    pxe = page.locator("#pxe-url").inner_text()
    assert pxe == f"{origin}/pxe/{sid}/v1.0.0/metal-amd64"
    followed.append(pxe)
    assert f"{origin}/oci/cosign/signing-key.pub" in followed
    for link in followed:
        assert link.startswith(origin), link
        assert _follow(page, link) == 200, link
    # The PXE script fetches from this server too.
    script = page.request.get(pxe).text()
    assert f"kernel {image_base}/kernel-amd64 " in script
    assert f"initrd {image_base}/initramfs-amd64.xz" in script
    # Once built, the kernel's sum is on the page itself (finding 12).
    page.reload()
    shown = page.locator("#sha256-kernel-amd64").inner_text()
    assert shown == hashlib.sha256(page.request.get(kernel).body()).hexdigest()
    _shot(page, "16-final-links")

    # Secure Boot, chosen from the summary: "Change these choices", one step, save.
    with page.expect_navigation():
        page.get_by_role("link", name="Change these choices").click()
    with page.expect_navigation():
        page.get_by_role("navigation", name="Progress").get_by_role(
            "link", name="Architecture"
        ).click()
    page.get_by_label("Build Secure Boot images").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save and show the image").click()
    assert _heading(page) == "Your image"
    cert = page.locator("#secureboot-cert").get_attribute("href")
    assert cert == f"{origin}/secureboot/signing-cert.pem"
    assert _follow(page, cert) == 200
    secure_pxe = page.locator("#pxe-url").inner_text()
    assert secure_pxe.startswith(f"{origin}/pxe/")
    assert _follow(page, secure_pxe) == 200
    _shot(page, "17-final-secureboot")


def test_forwarded_headers_do_not_change_the_links(web_factory: LiveFactory) -> None:
    """No proxy is configured: a client's X-Forwarded-* must not put its host or scheme into
    the links (gunicorn trusts X-Forwarded-Proto from local clients unless told not to)."""
    request = urllib.request.Request(
        f"{web_factory.url}/?{FINAL_QUERY}",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        html = response.read().decode()

    assert f'href="{web_factory.url}/image/' in html
    assert "evil.example" not in html
    assert "https://" not in html


def _tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _focused_id(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_the_wizard_with_the_keyboard_only(web_factory: LiveFactory, browser: Browser) -> None:
    """Findings 2 and 4, and a screenshot of every step at desktop and phone width."""
    context = browser.new_context(
        viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    page.goto(f"{web_factory.url}/")
    steps = [page.url]

    _tab_to(page, "#target-metal")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    for _ in range(2):  # release, architecture: their defaults
        steps.append(page.url)
        _tab_to(page, "button.primary")
        with page.expect_navigation():
            page.keyboard.press("Enter")

    assert _heading(page) == "System extensions"
    steps.append(page.url)
    _tab_to(page, "#extension-filter")
    page.keyboard.type("program")
    page.keyboard.press("Enter")  # filters; must not submit the step
    assert _heading(page) == "System extensions"
    assert page.url == steps[-1]
    assert page.locator("#extension-list li:visible").count() == 1
    _tab_to(page, "input[value='factory/hello']")
    page.keyboard.press("Space")
    assert page.locator("input[value='factory/hello']").is_checked()
    assert page.evaluate("document.activeElement.value") == "factory/hello"
    _tab_to(page, "button.primary")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert _heading(page) == "Kernel modules"
    steps.append(page.url)
    _tab_to(page, "#module-search")
    page.keyboard.type("zra")
    page.locator("#mod-zram").wait_for()
    _tab_to(page, "#mod-zram")
    page.keyboard.press("Space")
    page.locator("#module-chosen #mod-zram").wait_for()
    # Finding 4: the focus goes back to the search, not to the page's start.
    assert _focused_id(page) == "module-search"
    _tab_to(page, "button.primary")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert _heading(page) == "Kernel arguments and boot"
    steps.append(page.url)
    _tab_to(page, "#field-cmdline")
    page.keyboard.type('console=ttyS0 foo="a b"')
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Next, not Back

    assert _heading(page) == "Your image"
    steps.append(page.url)
    yaml = page.locator("#schematic-yaml").inner_text()
    assert '- foo="a b"' in yaml  # finding 10
    # Finding 3: copying says so, on the button and to screen readers.
    _tab_to(page, "button[data-copy='schematic-yaml']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector(\"button[data-copy='schematic-yaml']\")"
        ".textContent.startsWith('Copied')"
    )
    assert page.evaluate("navigator.clipboard.readText()") == yaml.strip()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    small = phone.new_page()
    names = ["hardware", "version", "arch", "extensions", "modules", "kernel-args", "final"]
    for index, (name, url) in enumerate(zip(names, steps, strict=True), start=1):
        page.goto(url)
        _shot(page, f"keyboard-{index:02}-{name}-desktop")
        small.goto(url)
        _shot(small, f"keyboard-{index:02}-{name}-phone")
    phone.close()
    context.close()
    # For people to look at: the final page in German and in dark mode.
    german = browser.new_context(viewport=DESKTOP, locale="de-DE", color_scheme="dark")
    dark = german.new_page()
    dark.goto(steps[-1])
    assert dark.locator("html").get_attribute("lang") == "de"
    _shot(dark, "keyboard-08-final-german-dark")
    german.close()


def _has_builds_api(live: LiveFactory) -> bool:
    document = json.loads(live.get("/openapi.json"))
    return "post" in document["paths"].get("/builds", {})


def test_upload_shows_the_parsers_message_then_lands_on_the_final_page(
    web_factory: LiveFactory, page: Page, expected_errors: set[str]
) -> None:
    bad = b"customization:\n  extraKernelArgs: nope\n"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            urllib.request.Request(f"{web_factory.url}/schematics", data=bad, method="POST")
        )
    api_message = refused.value.read().decode().strip()

    page.goto(f"{web_factory.url}/upload")
    assert _heading(page) == "Upload a schematic"
    _shot(page, "08-upload")
    page.get_by_label("Schematic file").set_input_files(files=[_yaml_file("bad.yaml", bad)])
    before = page.url
    page.get_by_role("button", name="Upload").click()
    expected_errors.add(_failed_load("400 (BAD REQUEST)"))
    alert = page.get_by_role("alert")
    alert.wait_for()
    # Finding 9: in words, once, focus on the message, the chosen file kept.
    words = "Line 2: “customization.extraKernelArgs” must be a list of texts, not the value “nope”."
    assert page.locator("#error-message").inner_text() == words
    assert api_message.startswith("yaml: construct errors:")
    assert page.locator("main").inner_text().count(words) == 1
    assert page.evaluate("document.activeElement.id") == "error"
    assert page.url == before
    assert page.evaluate("document.getElementById('field-schematic').files[0].name") == "bad.yaml"
    assert page.get_by_label("Schematic file").get_attribute("aria-invalid") == "true"
    _shot(page, "09-upload-error")

    good = b"customization:\n  meta:\n    - key: 0xa\n      value: from the upload page\n"
    page.get_by_label("Schematic file").set_input_files(files=[_yaml_file("good.yaml", good)])
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    assert _heading(page) == "Your image"
    assert page.locator("#schematic-id").inner_text() == _api_id(web_factory, good)
    assert "from the upload page" in page.locator("#schematic-yaml").inner_text()
    _shot(page, "10-upload-final")


def test_an_uploaded_schematic_is_edited_as_a_copy(web_factory: LiveFactory, page: Page) -> None:
    original = (
        b"customization:\n  extraKernelArgs: [console=ttyS0]\n"
        b"  systemExtensions:\n    officialExtensions: [factory/hello]\n"
    )
    page.goto(f"{web_factory.url}/upload")
    page.get_by_label("Schematic file").set_input_files(files=[_yaml_file("mine.yaml", original)])
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    assert page.locator("#schematic-id").inner_text() == _api_id(web_factory, original)

    with page.expect_navigation():
        page.get_by_role("link", name="Edit a copy of this schematic").click()
    assert _heading(page) == "System extensions"
    assert page.get_by_label("factory/hello").is_checked()
    page.get_by_label("factory/dummy-module").check()
    _shot(page, "11-edit-copy-extensions")
    _next(page)
    assert _heading(page) == "Kernel modules"
    _next(page)
    assert _heading(page) == "Kernel arguments and boot"
    assert page.get_by_label("Extra kernel arguments").input_value() == "console=ttyS0"
    _next(page)

    assert _heading(page) == "Your image"
    edited = original.replace(b"[factory/hello]", b"[factory/dummy-module, factory/hello]")
    assert page.locator("#schematic-id").inner_text() == _api_id(web_factory, edited)
    _shot(page, "12-edit-copy-final")


def test_pages_fit_a_phone_screen(web_factory: LiveFactory, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    final = (
        f"{web_factory.url}/?target=metal&version=v1.0.0&arch=amd64&extensions=factory%2Fhello"
        "&modules=-&cmdline-set=true"
    )
    for name, url in (
        ("11-phone-extensions", f"{web_factory.url}/?target=metal&version=v1.0.0&arch=amd64"),
        ("12-phone-final", final),
    ):
        page.goto(url)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name}: {overflow}px wider than the screen"
        _shot(page, name)
    context.close()


def test_the_form_works_without_scripts(web_factory: LiveFactory, browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{web_factory.url}/?target=metal&version=v1.0.0&arch=amd64&extensions=-")

    page.get_by_label(MODULE_SEARCH).fill("zsmall")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    page.get_by_label("zsmalloc").check()
    _shot(page, "13-no-script-modules")
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()

    assert _heading(page) == "Kernel arguments and boot"
    assert "modules=zsmalloc" in page.url
    # Finding 3: a copy button that cannot copy is not shown.
    page.goto(f"{web_factory.url}/?{FINAL_QUERY}")
    assert page.locator("button.copy").count() > 0
    assert page.locator("button.copy:visible").count() == 0
    context.close()


# A schematic no other test builds, so its initramfs really is built while the page watches.
BUILD_NOW_QUERY = (
    "target=metal&version=v1.0.0&arch=amd64&extensions=factory%2Ffirmware-demo&modules=-"
    "&cmdline=build.now%3D1&cmdline-set=true"
)
_RECORD_STAGES = """() => {
    window.seenStages = [];
    const stage = document.querySelector("#build-initramfs-amd64-xz .stage");
    new MutationObserver(() => window.seenStages.push(stage.textContent))
        .observe(stage, {childList: true, characterData: true, subtree: true});
}"""


def test_build_now_shows_progress_until_the_download_is_ready(
    web_factory: LiveFactory, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{web_factory.url}/?{BUILD_NOW_QUERY}")
    asset = page.locator("#asset-initramfs-amd64-xz")
    page.evaluate(_RECORD_STAGES)

    asset.get_by_role("button", name="Build now").click()
    ready = asset.locator(".result.done a.download-ready")
    ready.wait_for(timeout=600_000)
    _shot(page, "14-build-now-done")

    # Finding 12: same inputs, same bytes: no "Build again" that would only return this file;
    # the log speaks without our module names.
    assert asset.locator("button[data-build]").is_hidden()
    assert page.evaluate("document.activeElement.className") == "download-ready"
    log = asset.locator("details.log pre").text_content() or ""
    assert log.strip()
    assert not re.search(r"^workers[.\w]*: ", log, re.MULTILINE), log
    stages = page.evaluate("window.seenStages")
    assert any(re.fullmatch(r".+: \d{1,3}%", text) for text in stages), stages
    assert asset.locator(".stage").inner_text() == "Build finished."
    assert asset.locator("progress").get_attribute("value") == "100"
    shown_sha256 = asset.locator("code.sha256").inner_text()
    with page.expect_download() as started_download:
        ready.click()
    saved = tmp_path / "initramfs-amd64.xz"
    started_download.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == shown_sha256
    assert saved.stat().st_size > 0


def test_build_failures_are_explained(
    web_factory: LiveFactory, page: Page, expected_errors: set[str]
) -> None:
    """The error paths of the page's script, with the factory's answers stubbed in the browser:
    a failed build and a refused start each end in a sentence, and the button comes back."""
    events = "/builds/" + "f" * 64 + "/events"
    started = {"key": "f" * 64, "state": "queued", "status_url": "/builds/x", "events_url": events}
    page.route(
        "**/builds",
        lambda route: route.fulfill(status=202, json={**started, "download_url": "/image/x"}),
    )
    page.route(
        f"**{events}",
        lambda route: route.fulfill(
            status=200,
            content_type="text/event-stream",
            body='event: stage\ndata: {"stage": "iso", "percent": 40}\n\n'
            'event: failed\ndata: {"error": "xorriso: no space left on device"}\n\n',
        ),
    )
    page.goto(f"{web_factory.url}/?{BUILD_NOW_QUERY}")
    iso = page.locator("#asset-metal-amd64-iso")

    iso.get_by_role("button", name="Build now").click()

    result = iso.locator(".result.failed")
    result.wait_for()
    assert result.inner_text() == "The build failed: xorriso: no space left on device"
    assert iso.get_by_role("button", name="Try again").is_enabled()
    _shot(page, "15-build-failed")

    page.unroute("**/builds")
    page.route("**/builds", lambda route: route.fulfill(status=503, body="queue is full\n"))
    expected_errors.add(_failed_load("503 (Service Unavailable)"))
    iso.get_by_role("button", name="Try again").click()
    iso.locator(".result.failed").filter(has_text="busy").wait_for()
    assert iso.locator(".result").inner_text() == (
        "The factory is busy or its storage is unreachable; try again in a minute (queue is full)."
    )


def test_extension_upload_page_explains_then_lands_in_the_catalog(
    web_factory: LiveFactory, page: Page, expected_errors: set[str]
) -> None:
    store = LocalStore(web_factory.data_dir / "store")
    _, token = create_token(store, "browser-uploader", ROLE_UPLOAD)
    page.goto(f"{web_factory.url}/catalog")
    with page.expect_navigation():
        page.get_by_role("link", name="Upload an extension").click()
    assert _heading(page) == "Upload an extension"
    _shot(page, "11-extension-upload")
    page.get_by_label("Upload token").fill(token)
    page.get_by_label("Namespace").fill("browser")
    no_manifest = tar_bytes(hello_members()[1:])
    page.get_by_label("Extension file").set_input_files(files=[_tar_file("bad.tar", no_manifest)])
    before = page.url
    page.get_by_role("button", name="Upload").click()
    expected_errors.add(_failed_load("400 (BAD REQUEST)"))
    page.get_by_role("alert").wait_for()
    # In words, focus on the message, the chosen file kept, the field marked.
    assert page.locator("#error-message").inner_text() == (
        "The archive has no manifest.yaml at its top. An extension is a manifest.yaml beside "
        "a rootfs/ directory."
    )
    assert page.evaluate("document.activeElement.id") == "error"
    assert page.url == before
    assert page.evaluate("document.getElementById('field-extension').files[0].name") == "bad.tar"
    assert page.get_by_label("Extension file").get_attribute("aria-invalid") == "true"
    _shot(page, "12-extension-upload-error")

    members = hello_members()
    members[0] = file("manifest.yaml", manifest("browser-tool", "1.0.0", ">= v1.0.0"))
    good = _tar_file("good.tar", tar_bytes(members))
    page.get_by_label("Extension file").set_input_files(files=[good])
    with page.expect_navigation():
        page.get_by_role("button", name="Upload").click()
    assert _heading(page) == "browser/browser-tool 1.0.0"
    page.goto(f"{web_factory.url}/catalog?q=browser-tool")
    assert page.get_by_role("link", name="browser/browser-tool", exact=True).count() == 1


def _tar_file(name: str, data: bytes) -> FilePayload:
    return FilePayload(name=name, mimeType="application/x-tar", buffer=data)
