"""SecureBoot assets under OVMF with Secure Boot enforced (q35 + SMM, the secboot build).

Our certificate is enrolled as PK, KEK and db offline (virt-fw-vars); the SecureBoot ISO and
UKI must boot and print every `factory:` line, while an unsigned UKI and one signed with
another key must be refused. A second ISO with `enrollKeys: force` starts in setup mode:
systemd-boot enrolls our PK/KEK/db `.auth` files itself (proving their DER certificate lists
and signatures are what firmware accepts), resets, and then boots under Secure Boot.
Structure checks use sbverify, mtools and the `.auth` parser.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.boot import assert_in_log, boot_and_capture
from tests.workers.assets import SCHEMATIC, build_assets, stock_store, the_schematic
from tests.workers.uefi_vm import (
    DENIED,
    SECURE_BOOT_ON,
    cdrom_args,
    enrolled_vars,
    esp_disk,
    firmware_args,
    schematic_lines,
    setup_mode_vars,
)
from workers.assembly.run import ToolError, run_tool
from workers.assembly.vfat import list_vfat
from workers.keys.efi_auth import list_certificates, split_authenticated_variable
from workers.keys.secureboot_key import SecureBootKey, load_or_create_secureboot_key, sign_pe
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import LocalStore

pytestmark = pytest.mark.integration

FORCE_SCHEMATIC = SCHEMATIC + b"  secureboot:\n    enrollKeys: force\n"
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}
BOOT_BUDGET = 240
REFUSAL_WAIT = 60  # OVMF falls back to its shell after a refusal: nothing ever powers off
# The built assets by name, our SecureBoot key, and another key.
Assets = tuple[dict[str, Path], SecureBootKey, SecureBootKey]


@pytest.fixture(scope="module")
def assets(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Assets:
    """The assets, our key, and another key (for the wrongly signed UKI)."""
    root = tmp_path_factory.mktemp("secureboot")
    store, settings = stock_store(reference_release, root)
    out = root / "out"
    out.mkdir()
    paths = ["metal-amd64-secureboot.iso", "metal-amd64-secureboot-uki.efi", "metal-amd64-uki.efi"]
    built = build_assets(store, settings, paths, out)
    forced = build_assets(
        store, settings, ["metal-amd64-secureboot.iso"], root / "forced", FORCE_SCHEMATIC
    )
    built["force.iso"] = forced["metal-amd64-secureboot.iso"]
    ours = load_or_create_secureboot_key(settings)
    other = load_or_create_secureboot_key(Settings(data_dir=root / "other"))
    built["other-key-uki.efi"] = sign_pe(
        other, built["metal-amd64-uki.efi"], out / "other-key-uki.efi", epoch=1700000000
    )
    return built, ours, other


def _extract_esp(iso: Path, dest: Path) -> Path:
    run_tool(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/efi.img", dest])
    return dest


def _mcopy(image: Path, path: str, dest: Path) -> Path:
    run_tool(["mcopy", "-i", image, f"::/{path}", dest], env=MTOOLS_ENV)
    return dest


def test_signatures_verify_only_with_our_certificate(assets: Assets, tmp_path: Path) -> None:
    built, ours, other = assets
    uki = built["metal-amd64-secureboot-uki.efi"]
    assert (
        "Signature verification OK"
        in run_tool(["sbverify", "--cert", ours.cert_path, uki]).decode()
    )
    with pytest.raises(ToolError):
        run_tool(["sbverify", "--cert", other.cert_path, uki])
    with pytest.raises(ToolError):
        run_tool(["sbverify", "--cert", ours.cert_path, built["metal-amd64-uki.efi"]])
    esp = _extract_esp(built["metal-amd64-secureboot.iso"], tmp_path / "efi.img")
    for path in ("EFI/BOOT/BOOTX64.EFI", "EFI/Linux/factory-v1.0.0.efi"):
        binary = _mcopy(esp, path, tmp_path / path.replace("/", "_"))
        run_tool(["sbverify", "--cert", ours.cert_path, binary])


def test_iso_esp_carries_der_enrollment_keys(assets: Assets, tmp_path: Path) -> None:
    built, ours, _ = assets
    esp = _extract_esp(built["metal-amd64-secureboot.iso"], tmp_path / "efi.img")
    files = list_vfat(esp)
    assert "EFI/keys/uki-signing-cert.der" in files
    assert _mcopy(esp, "EFI/keys/uki-signing-cert.der", tmp_path / "c.der").read_bytes() == (
        ours.cert_der
    )
    # systemd-boot 252 does not know the default if-safe; it gets the safe `manual`.
    conf = _mcopy(esp, "loader/loader.conf", tmp_path / "loader.conf").read_text()
    assert conf.endswith("secure-boot-enroll manual\n")
    for name in ("PK", "KEK", "db"):
        auth = _mcopy(esp, f"loader/keys/auto/{name}.auth", tmp_path / f"{name}.auth")
        _, _, data = split_authenticated_variable(auth.read_bytes())
        assert [der for _, der in list_certificates(data)] == [ours.cert_der]


BootCase = Callable[[Path], str]


def _cases(built: dict[str, Path], ours: SecureBootKey) -> dict[str, tuple[BootCase, float]]:
    def enrolled(workdir: Path) -> list[str]:
        return firmware_args(enrolled_vars(ours.cert_path, workdir / "vars.fd"), secure=True)

    def uki(name: str) -> BootCase:
        return lambda workdir: boot_and_capture(
            drives=[f"file={esp_disk(built[name], workdir / 'esp.raw')},format=raw,if=virtio"],
            extra_args=enrolled(workdir),
            timeout=REFUSAL_WAIT if name != "metal-amd64-secureboot-uki.efi" else BOOT_BUDGET,
        )

    def iso(workdir: Path) -> str:
        return boot_and_capture(
            extra_args=[*cdrom_args(built["metal-amd64-secureboot.iso"]), *enrolled(workdir)],
            timeout=BOOT_BUDGET,
        )

    def enroll_then_boot(workdir: Path) -> str:
        variables = setup_mode_vars(workdir / "vars.fd")
        args = [*cdrom_args(built["force.iso"]), *firmware_args(variables, secure=True)]
        # systemd-boot enrolls and resets; -no-reboot turns the reset into QEMU's exit.
        first = boot_and_capture(extra_args=args, timeout=BOOT_BUDGET)
        second = boot_and_capture(extra_args=args, timeout=BOOT_BUDGET)
        return first + "\n=== second boot ===\n" + second

    return {
        "sb-iso": (iso, BOOT_BUDGET),
        "sb-uki": (uki("metal-amd64-secureboot-uki.efi"), BOOT_BUDGET),
        "unsigned-uki": (uki("metal-amd64-uki.efi"), REFUSAL_WAIT),
        "other-key-uki": (uki("other-key-uki.efi"), REFUSAL_WAIT),
        "enroll-then-boot": (enroll_then_boot, 2 * BOOT_BUDGET),
    }


@pytest.fixture(scope="module")
def boot_logs(
    assets: Assets,
) -> Iterator[dict[str, str]]:
    """Every case, two QEMUs at a time."""
    built, ours, _ = assets
    cases = _cases(built, ours)
    with tempfile.TemporaryDirectory(prefix="sb-boots-") as tmp:

        def run(name: str) -> tuple[str, str]:
            workdir = Path(tmp) / name
            workdir.mkdir()
            return name, cases[name][0](workdir)

        with ThreadPoolExecutor(max_workers=2) as pool:
            yield dict(pool.map(run, sorted(cases, key=lambda n: -cases[n][1])))


@pytest.mark.boot
@pytest.mark.parametrize("case", ["sb-iso", "sb-uki"])
def test_signed_assets_boot_under_secure_boot(case: str, boot_logs: dict[str, str]) -> None:
    _, sid = the_schematic()
    log = boot_logs[case]
    assert_in_log(log, SECURE_BOOT_ON, *schematic_lines(sid))
    # No META partition: META rides on the command line.
    assert "INSTALLER_META_BASE64" in log.split("factory:", 1)[0]


@pytest.mark.boot
@pytest.mark.parametrize("case", ["unsigned-uki", "other-key-uki"])
def test_unsigned_or_foreign_ukis_are_refused(case: str, boot_logs: dict[str, str]) -> None:
    log = boot_logs[case]
    assert "factory: boot ok" not in log
    assert "Linux version" not in log
    assert_in_log(log, DENIED)


@pytest.mark.boot
def test_systemd_boot_enrolls_our_keys_then_boots(boot_logs: dict[str, str]) -> None:
    sid = schematic_id(parse_schematic(FORCE_SCHEMATIC))
    first, second = boot_logs["enroll-then-boot"].split("\n=== second boot ===\n")
    assert_in_log(first, "Enrolling secure boot keys from directory: \\loader\\keys\\auto")
    assert "factory: boot ok" not in first
    assert_in_log(second, SECURE_BOOT_ON, *schematic_lines(sid))
