"""The SecureBoot key: created once or configured, sbsign signatures sbverify accepts (and a
wrong certificate does not), deterministic signing, enrollment databases with DER certs."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest
from cryptography import x509

from tests.workers.keys.test_efi_auth import _der, _pair
from workers.assembly.pe import NewSection, append_sections
from workers.assembly.run import ToolError, run_tool
from workers.errors import InvalidRequest
from workers.keys.efi_auth import (
    DATABASES,
    MICROSOFT_OWNER,
    list_certificates,
    owner_guid,
    split_authenticated_variable,
)
from workers.keys.secureboot_key import (
    enrollment_files,
    generate_secureboot_pair,
    load_or_create_secureboot_key,
    load_secureboot_key,
    load_well_known_certs,
    sign_pe,
)
from workers.settings import Settings

STUB = Path("/usr/lib/systemd/boot/efi/linuxx64.efi.stub")
EPOCH = 1700000000


def test_generated_once_then_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_or_create_secureboot_key(settings)
    second = load_or_create_secureboot_key(settings)
    assert first.fingerprint == second.fingerprint
    assert first.key_path.stat().st_mode & 0o777 == 0o600
    assert first.private_key.key_size == 2048
    constraints = first.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca
    assert first.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")


def test_configured_pair_is_used(tmp_path: Path) -> None:
    key_pem, cert_pem = generate_secureboot_pair()
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(cert_pem)
    settings = Settings(
        data_dir=tmp_path / "data",
        secureboot_key=str(tmp_path / "k.pem"),
        secureboot_cert=str(tmp_path / "c.pem"),
    )
    key = load_or_create_secureboot_key(settings)
    assert key.cert_pem == cert_pem
    assert not (tmp_path / "data").exists()


def test_half_configured_or_mismatched_is_refused(tmp_path: Path) -> None:
    key_pem, _ = generate_secureboot_pair()
    _, other_cert = generate_secureboot_pair()
    (tmp_path / "k.pem").write_bytes(key_pem)
    (tmp_path / "c.pem").write_bytes(other_cert)
    with pytest.raises(ValueError, match="set both or neither"):
        load_or_create_secureboot_key(Settings(data_dir=tmp_path, secureboot_key="k.pem"))
    with pytest.raises(ValueError, match="does not belong"):
        load_secureboot_key(tmp_path / "k.pem", tmp_path / "c.pem")


@pytest.mark.integration
def test_sbsign_signature_verifies_only_with_our_cert(tmp_path: Path) -> None:
    key = load_or_create_secureboot_key(Settings(data_dir=tmp_path / "a"))
    other = load_or_create_secureboot_key(Settings(data_dir=tmp_path / "b"))
    image = append_sections(
        STUB, tmp_path / "uki.efi", [NewSection(".osrel", data=b"ID=x\n")], timestamp=EPOCH
    )
    signed = sign_pe(key, image, tmp_path / "signed.efi", epoch=EPOCH)
    out = run_tool(["sbverify", "--cert", key.cert_path, signed]).decode()
    assert "Signature verification OK" in out
    with pytest.raises(ToolError, match="sbverify"):
        run_tool(["sbverify", "--cert", other.cert_path, signed])
    with pytest.raises(ToolError, match="sbverify"):
        run_tool(["sbverify", "--cert", key.cert_path, image])
    time.sleep(1.1)  # sbsign would stamp another signing time without the frozen clock
    again = sign_pe(key, image, tmp_path / "again.efi", epoch=EPOCH)
    assert again.read_bytes() == signed.read_bytes()
    later = sign_pe(key, image, tmp_path / "later.efi", epoch=EPOCH + 1)
    assert later.read_bytes() != signed.read_bytes()


def test_enrollment_files_hold_our_der_cert(tmp_path: Path) -> None:
    key = load_or_create_secureboot_key(Settings(data_dir=tmp_path))
    files = enrollment_files(key, EPOCH)
    assert sorted(files) == ["KEK.auth", "PK.auth", "db.auth"]
    for name in DATABASES:
        epoch, _, data = split_authenticated_variable(files[f"{name}.auth"])
        assert epoch == EPOCH
        assert list_certificates(data) == [(owner_guid(key.cert_der), key.cert_der)]
    assert enrollment_files(key, EPOCH) == files


def _well_known_dir(root: Path) -> tuple[list[bytes], list[bytes]]:
    kek = [_der(_pair("kek")[1])]
    db = [_der(_pair(f"db{i}")[1]) for i in range(2)]
    for sub, certs in (("kek", kek), ("db", db)):
        (root / sub).mkdir(parents=True)
        for i, der in enumerate(certs):
            (root / sub / f"{i}.der").write_bytes(der)
    return kek, db


def test_well_known_certs_need_configuration(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="IMAGE_FACTORY_SECUREBOOT_WELL_KNOWN_CERTS"):
        load_well_known_certs(Settings(data_dir=tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequest, match=r"no kek/\*\.der"):
        load_well_known_certs(
            Settings(data_dir=tmp_path, secureboot_well_known_certs=str(tmp_path / "empty"))
        )


def test_well_known_certs_go_into_kek_and_db_only(tmp_path: Path) -> None:
    kek, db = _well_known_dir(tmp_path / "certs")
    settings = Settings(data_dir=tmp_path, secureboot_well_known_certs=str(tmp_path / "certs"))
    well_known = load_well_known_certs(settings)
    key = load_or_create_secureboot_key(settings)
    files = enrollment_files(key, EPOCH, well_known)
    ours = (owner_guid(key.cert_der), key.cert_der)

    def certs(name: str) -> list[tuple[uuid.UUID, bytes]]:
        return list_certificates(split_authenticated_variable(files[name])[2])

    assert certs("PK.auth") == [ours]
    assert certs("KEK.auth") == [ours, *((MICROSOFT_OWNER, d) for d in kek)]
    assert sorted(certs("db.auth")[1:]) == sorted((MICROSOFT_OWNER, d) for d in db)
    shutil.rmtree(tmp_path / "certs" / "db")
    (tmp_path / "certs" / "db").mkdir()
    (tmp_path / "certs" / "db" / "bad.der").write_bytes(b"not a certificate")
    with pytest.raises(ValueError, match=r"bad\.der: not a DER certificate"):
        load_well_known_certs(settings)
