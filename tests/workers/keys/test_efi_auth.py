"""EFI signature lists and EFI_VARIABLE_AUTHENTICATION_2 files, checked against the spec
layout and with `openssl cms -verify` over the exact bytes the firmware hashes."""

from __future__ import annotations

import datetime
import struct
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from workers.assembly.run import ToolError, run_tool
from workers.keys.efi_auth import (
    AUTH_ATTRIBUTES,
    EFI_CERT_X509_GUID,
    EFI_GLOBAL_VARIABLE,
    authenticated_variable,
    efi_time,
    list_certificates,
    owner_guid,
    signature_list,
    signed_payload,
    split_authenticated_variable,
)

EPOCH = 1700000000
PKCS7_SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")


def _pair(cn: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + body


def test_signature_list_layout() -> None:
    _, a = _pair("a")
    _, b = _pair("bb")
    owner = uuid.UUID("11111111-2222-3333-4444-555555555555")
    esl = signature_list([_der(a), _der(b)], owner)
    assert esl[:16] == EFI_CERT_X509_GUID.bytes_le
    _, header, entry = struct.unpack_from("<III", esl, 16)
    assert (header, entry) == (0, 16 + len(_der(a)))
    assert list_certificates(esl) == [(owner, _der(a)), (owner, _der(b))]
    assert esl.count(EFI_CERT_X509_GUID.bytes_le) == (1 if len(_der(a)) == len(_der(b)) else 2)


def test_signature_list_takes_only_der() -> None:
    _, cert = _pair("a")
    with pytest.raises(ValueError, match=r"not a DER X\.509 certificate"):
        signature_list([cert.public_bytes(serialization.Encoding.PEM)], uuid.uuid4())


def test_owner_guid_is_stable_name_based() -> None:
    _, cert = _pair("a")
    guid = owner_guid(_der(cert))
    assert guid == owner_guid(_der(cert))
    assert guid.version == 4
    assert guid.variant == uuid.RFC_4122


def test_efi_time() -> None:
    assert efi_time(EPOCH) == struct.pack("<HBBBBBBIhBB", 2023, 11, 14, 22, 13, 20, 0, 0, 0, 0, 0)


@pytest.mark.integration
def test_auth_file_verifies_over_the_firmware_payload(tmp_path: Path) -> None:
    key, cert = _pair("signer")
    esl = signature_list([_der(cert)], owner_guid(_der(cert)))
    auth = authenticated_variable("KEK", EFI_GLOBAL_VARIABLE, esl, key=key, cert=cert, epoch=EPOCH)
    epoch, signed_data, data = split_authenticated_variable(auth)
    assert (epoch, data) == (EPOCH, esl)
    # edk2's precondition: bare SignedData, two-byte length, SHA-256 OID at byte 13.
    assert signed_data[0] == 0x30
    assert signed_data[1] == 0x82
    assert signed_data[13:22] == bytes.fromhex("608648016503040201")
    payload = signed_payload("KEK", EFI_GLOBAL_VARIABLE, efi_time(EPOCH), esl)
    assert payload[6:22] == EFI_GLOBAL_VARIABLE.bytes_le
    assert struct.unpack_from("<I", payload, 22)[0] == AUTH_ATTRIBUTES

    content_info = _tlv(0x30, PKCS7_SIGNED_DATA_OID + _tlv(0xA0, signed_data))
    (tmp_path / "sig.der").write_bytes(content_info)
    (tmp_path / "payload").write_bytes(payload)
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    verify: list[str | Path] = [
        "openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.der",
        "-CAfile", tmp_path / "cert.pem", "-purpose", "any", "-out", "/dev/null", "-content",
    ]  # fmt: skip
    run_tool([*verify, tmp_path / "payload"])
    (tmp_path / "other").write_bytes(
        signed_payload("db", EFI_GLOBAL_VARIABLE, efi_time(EPOCH), esl)
    )
    with pytest.raises(ToolError):
        run_tool([*verify, tmp_path / "other"])


def test_auth_file_is_deterministic() -> None:
    key, cert = _pair("signer")
    esl = signature_list([_der(cert)], owner_guid(_der(cert)))
    one = authenticated_variable("PK", EFI_GLOBAL_VARIABLE, esl, key=key, cert=cert, epoch=EPOCH)
    two = authenticated_variable("PK", EFI_GLOBAL_VARIABLE, esl, key=key, cert=cert, epoch=EPOCH)
    assert one == two
    later = authenticated_variable(
        "PK", EFI_GLOBAL_VARIABLE, esl, key=key, cert=cert, epoch=EPOCH + 1
    )
    assert later != one
