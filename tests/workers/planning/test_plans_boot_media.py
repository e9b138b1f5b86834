"""Plans of the boot media kinds: resolved bootloader and sector size, the overlay, the
SecureBoot certificate and enrollment, installer aliases, and the signer check."""

from __future__ import annotations

from pathlib import Path

import pytest

from extensions.bundled import CATALOG_DIR
from tests.workers.planning.test_plans import BASE, EPOCH, _extension, _plan
from tests.workers.releases.fakes import save_fake_release
from workers.catalog import add_overlay
from workers.errors import InvalidRequest
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.pipeline.boot_media import SignerMismatch, check_signer
from workers.planning.cmdline import asset_cmdline
from workers.releases.stored import load_release
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration
OVERLAY = BASE + "overlay:\n  image: factory/testboard\n  name: testboard\n"


@pytest.fixture
def stocked(store: LocalStore, tmp_path: Path) -> LocalStore:
    """A fake release v1.0.0 with the extension the base schematic names."""
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    _extension(store, tmp_path, "hello")
    return store


@pytest.fixture
def with_overlay(stocked: LocalStore) -> LocalStore:
    add_overlay(stocked, CATALOG_DIR / "overlays" / "testboard", "factory", EPOCH)
    return stocked


@pytest.mark.parametrize(
    ("extra", "path", "bootloader"),
    [
        ("", "metal-amd64.raw", "grub"),
        ("  bootloader: grub\n", "metal-amd64.iso", "grub"),
        ("  bootloader: sd-boot\n", "metal-amd64.raw", "sd-boot"),
        ("  bootloader: dual-boot\n", "metal-amd64.iso", "dual-boot"),
        # SecureBoot always boots through systemd-boot.
        ("  bootloader: dual-boot\n", "metal-amd64-secureboot.iso", "sd-boot"),
        ("", "metal-amd64-secureboot.raw", "sd-boot"),
    ],
)
def test_bootloader_is_resolved(
    stocked: LocalStore,
    settings: Settings,
    extra: str,
    path: str,
    bootloader: str,
) -> None:
    plan = _plan(stocked, settings, path, BASE + extra)
    assert plan.bootloader == bootloader
    assert plan.to_json()["bootloader"] == bootloader


def test_sector_size_defaults_to_512(stocked: LocalStore, settings: Settings) -> None:
    assert _plan(stocked, settings, "metal-amd64.raw").sector_size == 512
    four_k = BASE + "  diskImage:\n    sectorSize: 4096\n"
    assert _plan(stocked, settings, "metal-amd64.raw", four_k).sector_size == 4096
    assert "sector_size" not in _plan(stocked, settings, "metal-amd64.iso", four_k).to_json()


def test_overlay_goes_where_a_command_line_or_an_esp_is(
    with_overlay: LocalStore, settings: Settings
) -> None:
    for path in (
        "cmdline-metal-amd64",
        "metal-amd64.iso",
        "metal-amd64.raw",
        "metal-amd64-uki.efi",
    ):
        plan = _plan(with_overlay, settings, path, OVERLAY)
        assert plan.overlay is not None
        assert plan.overlay.name == "testboard"
        assert plan.overlay.kernel_args == ("factory.board=testboard",)
        assert plan.to_json()["overlay"]["digest"] == plan.overlay.digest
    for path in (
        "kernel-amd64",
        "initramfs-amd64.xz",
        "extensions-amd64.sqsh",
        "installer-amd64.tar",
    ):
        assert _plan(with_overlay, settings, path, OVERLAY).overlay is None
    plan = _plan(with_overlay, settings, "cmdline-metal-amd64", OVERLAY)
    release = load_release(with_overlay, "v1.0.0", "amd64")
    assert "factory.board=testboard" in asset_cmdline(plan, release).split()


def test_overlay_options_are_checked_and_recorded(
    with_overlay: LocalStore, settings: Settings
) -> None:
    text = OVERLAY + "  options:\n    configTxtAppend: x=1\n"
    plan = _plan(with_overlay, settings, "metal-amd64.raw", text)
    assert plan.overlay is not None
    assert plan.overlay.options == (("configTxtAppend", "x=1"),)
    with pytest.raises(InvalidRequest, match='has no option "nope"'):
        _plan(with_overlay, settings, "metal-amd64.raw", OVERLAY + "  options:\n    nope: 1\n")


def test_secureboot_plans_record_the_certificate(
    stocked: LocalStore,
    settings: Settings,
    tmp_path: Path,
) -> None:
    key = load_or_create_secureboot_key(settings)
    iso = _plan(stocked, settings, "metal-amd64-secureboot.iso")
    uki = _plan(stocked, settings, "metal-amd64-secureboot-uki.efi")
    assert iso.secureboot is not None
    assert uki.secureboot is not None
    assert (iso.secureboot.cert, iso.secureboot.enroll) == (key.fingerprint, "if-safe")
    assert (uki.secureboot.cert, uki.secureboot.enroll) == (key.fingerprint, "")
    assert _plan(stocked, settings, "metal-amd64.iso").secureboot is None
    forced = BASE + "  secureboot:\n    enrollKeys: 'off'\n"
    off = _plan(stocked, settings, "metal-amd64-secureboot.raw", forced).secureboot
    assert off is not None
    assert off.enroll == "off"
    # Another key: other SecureBoot bytes, the same plain ones.
    elsewhere = Settings(data_dir=tmp_path / "elsewhere")
    assert _plan(stocked, elsewhere, "metal-amd64-secureboot.iso").key != iso.key
    assert (
        _plan(stocked, elsewhere, "metal-amd64.iso").key
        == _plan(stocked, settings, "metal-amd64.iso").key
    )


def test_signer_must_match_the_plan(
    stocked: LocalStore,
    settings: Settings,
    tmp_path: Path,
) -> None:
    plan = _plan(stocked, settings, "metal-amd64-secureboot-uki.efi")
    signer = plan.signer(settings)
    assert signer is not None
    assert check_signer(plan, signer) is signer
    assert _plan(stocked, settings, "metal-amd64-uki.efi").signer(settings) is None
    with pytest.raises(SignerMismatch, match="needs the signing key"):
        check_signer(plan, None)
    other = plan.signer(Settings(data_dir=tmp_path / "other"))
    with pytest.raises(SignerMismatch, match="the plan was made for"):
        check_signer(plan, other)


def test_installer_keys(stocked: LocalStore, settings: Settings) -> None:
    def key(path: str) -> str:
        return _plan(stocked, settings, path).key

    # Without SecureBoot the platform does not shape an installer's bytes.
    assert key("metal-installer-amd64.tar") == key("installer-amd64.tar")
    assert key("aws-installer-amd64.tar") == key("installer-amd64.tar")
    # With SecureBoot it names the platform in the UKI's command line.
    assert key("aws-installer-amd64-secureboot.tar") != key("installer-amd64-secureboot.tar")
    plain = _plan(stocked, settings, "installer-amd64.tar")
    secure = _plan(stocked, settings, "installer-amd64-secureboot.tar")
    assert "extra_kernel_args" not in plain.to_json()
    assert secure.to_json()["extra_kernel_args"] == ["console=ttyS0"]
    assert "meta" not in secure.to_json()
