"""UEFI Secure Boot key databases: signature lists and time-based authenticated variables.

`signature_list(der_certs, owner)` is an `EFI_SIGNATURE_LIST` of type `EFI_CERT_X509_GUID`
holding **DER** certificates (OVMF and the UEFI spec need DER; Talos writes PEM there,
talos-formats §6.5, siderolabs/talos#8131). Certificates of different sizes go into separate
lists, because one list has one signature size.

`authenticated_variable(name, guid, data, key, cert, epoch)` wraps data as an
`EFI_VARIABLE_AUTHENTICATION_2` (UEFI 2.10 §8.2.2), i.e. the `.auth` files systemd-boot
enrolls from `loader/keys/auto/`:

    EFI_TIME TimeStamp                   16 bytes, = epoch (UTC), Pad/Nanosecond/TimeZone 0
    WIN_CERTIFICATE_UEFI_GUID            dwLength, wRevision 0x0200, wCertificateType 0x0EF1,
                                         CertType EFI_CERT_TYPE_PKCS7_GUID, CertData
    data                                 the signature list(s)

CertData is a DER PKCS#7 `SignedData` **without** the ContentInfo wrapper (edk2 checks for the
SHA-256 OID at byte 13 of it), detached, over
`VariableName (UTF-16LE, no NUL) ‖ VendorGuid ‖ Attributes (u32) ‖ TimeStamp ‖ data`, signed
with RSA PKCS#1 v1.5 and SHA-256, the signer certificate included, **no signed attributes**
(so no signing time). PKCS#1 v1.5 signatures are deterministic, so with the same key the
`.auth` files are byte-identical across builds.
"""

from __future__ import annotations

import calendar
import hashlib
import struct
import time
import uuid
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7

EFI_CERT_X509_GUID = uuid.UUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072")
EFI_CERT_TYPE_PKCS7_GUID = uuid.UUID("4aafd29d-68df-49ee-8aa9-347d375665a7")
EFI_GLOBAL_VARIABLE = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
EFI_IMAGE_SECURITY_DATABASE = uuid.UUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
# Owner of Microsoft's certificates in every vendor's default databases.
MICROSOFT_OWNER = uuid.UUID("77fa9abd-0359-4d32-bd60-28f4e78f784b")

# NV | BOOTSERVICE_ACCESS | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS
AUTH_ATTRIBUTES = 0x01 | 0x02 | 0x04 | 0x20
WIN_CERT_REVISION = 0x0200
WIN_CERT_TYPE_EFI_GUID = 0x0EF1
SIGNATURE_LIST_HEADER = 28
GUID_SIZE = 16

# Variable name and vendor GUID of each database, in the order firmware wants them enrolled.
DATABASES: dict[str, uuid.UUID] = {
    "db": EFI_IMAGE_SECURITY_DATABASE,
    "KEK": EFI_GLOBAL_VARIABLE,
    "PK": EFI_GLOBAL_VARIABLE,
}
_SHA256_OID = bytes.fromhex("608648016503040201")


def owner_guid(der: bytes) -> uuid.UUID:
    """A stable owner GUID for a certificate: name-based (SHA-256, X.500 namespace), as
    Talos derives it (`uuid.NewHash(sha256.New(), uuid.NameSpaceX500, cert, 4)`)."""
    raw = bytearray(hashlib.sha256(uuid.NAMESPACE_X500.bytes + der).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


def signature_list(der_certs: Sequence[bytes], owner: uuid.UUID) -> bytes:
    """EFI_SIGNATURE_LIST(s) of X.509 certificates, one list per certificate size."""
    out = b""
    by_size: dict[int, list[bytes]] = {}
    for der in der_certs:
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            raise ValueError("not a DER X.509 certificate") from None
        by_size.setdefault(len(der), []).append(der)
    for size, certs in by_size.items():
        entry_size = GUID_SIZE + size
        body = b"".join(owner.bytes_le + der for der in certs)
        out += (
            EFI_CERT_X509_GUID.bytes_le
            + struct.pack("<III", SIGNATURE_LIST_HEADER + len(body), 0, entry_size)
            + body
        )
    return out


def efi_time(epoch: int) -> bytes:
    """EFI_TIME for `epoch` in UTC, as time-based authenticated variables need it."""
    t = time.gmtime(epoch)
    return struct.pack(
        "<HBBBBBBIhBB", t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, 0, 0, 0, 0, 0
    )


def parse_efi_time(raw: bytes) -> int:
    year, month, day, hour, minute, second = struct.unpack_from("<HBBBBB", raw)
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _der_length(data: bytes, at: int) -> tuple[int, int]:
    """(content length, offset of the content) of the DER element whose tag is at `at`."""
    first = data[at + 1]
    if first < 0x80:
        return first, at + 2
    count = first & 0x7F
    return int.from_bytes(data[at + 2 : at + 2 + count], "big"), at + 2 + count


def _signed_data(content_info: bytes) -> bytes:
    """The SignedData element inside a PKCS#7 ContentInfo (`SEQUENCE {oid, [0] {SignedData}}`)."""
    _, at = _der_length(content_info, 0)  # outer SEQUENCE
    oid_length, oid_at = _der_length(content_info, at)  # contentType OID
    at = oid_at + oid_length
    if content_info[at] != 0xA0:
        raise ValueError("PKCS#7 ContentInfo without [0] content")
    _, inner = _der_length(content_info, at)
    length, body = _der_length(content_info, inner)
    return content_info[inner : body + length]


def pkcs7_detached(payload: bytes, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    """Detached PKCS#7 SignedData (no ContentInfo wrapper, no signed attributes) over payload."""
    content_info = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(payload)
        .add_signer(cert, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.NoAttributes,
                pkcs7.PKCS7Options.Binary,
            ],
        )
    )
    signed = _signed_data(content_info)
    # What edk2 checks before it verifies anything (AuthService.c VerifyTimeBasedPayload).
    if signed[1] != 0x82 or signed[13 : 13 + len(_SHA256_OID)] != _SHA256_OID:
        raise ValueError("PKCS#7 SignedData is not laid out as UEFI firmware expects")
    return signed


def signed_payload(name: str, guid: uuid.UUID, timestamp: bytes, data: bytes) -> bytes:
    """The bytes an EFI_VARIABLE_AUTHENTICATION_2 signature covers."""
    return (
        name.encode("utf-16-le")
        + guid.bytes_le
        + struct.pack("<I", AUTH_ATTRIBUTES)
        + timestamp
        + data
    )


def authenticated_variable(
    name: str,
    guid: uuid.UUID,
    data: bytes,
    *,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    epoch: int,
) -> bytes:
    """An `.auth` file: EFI_VARIABLE_AUTHENTICATION_2 header signed by `key`, then `data`."""
    timestamp = efi_time(epoch)
    signature = pkcs7_detached(signed_payload(name, guid, timestamp, data), key, cert)
    win_cert = (
        struct.pack(
            "<IHH",
            8 + GUID_SIZE + len(signature),
            WIN_CERT_REVISION,
            WIN_CERT_TYPE_EFI_GUID,
        )
        + EFI_CERT_TYPE_PKCS7_GUID.bytes_le
        + signature
    )
    return timestamp + win_cert + data


def split_authenticated_variable(auth: bytes) -> tuple[int, bytes, bytes]:
    """(epoch, PKCS#7 SignedData, variable data) of an `.auth` file (for checks and tests)."""
    length, revision, cert_type = struct.unpack_from("<IHH", auth, 16)
    if revision != WIN_CERT_REVISION or cert_type != WIN_CERT_TYPE_EFI_GUID:
        raise ValueError("not an EFI_VARIABLE_AUTHENTICATION_2")
    if auth[24:40] != EFI_CERT_TYPE_PKCS7_GUID.bytes_le:
        raise ValueError("authentication is not PKCS#7")
    return parse_efi_time(auth[:16]), auth[40 : 16 + length], auth[16 + length :]


def list_certificates(esl: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """(owner, DER) of every X.509 entry in concatenated signature lists."""
    found = []
    at = 0
    while at < len(esl):
        sig_type = uuid.UUID(bytes_le=esl[at : at + 16])
        list_size, header_size, entry_size = struct.unpack_from("<III", esl, at + 16)
        if sig_type != EFI_CERT_X509_GUID or list_size < SIGNATURE_LIST_HEADER:
            raise ValueError("not an X.509 EFI_SIGNATURE_LIST")
        entry = at + SIGNATURE_LIST_HEADER + header_size
        while entry < at + list_size:
            owner = uuid.UUID(bytes_le=esl[entry : entry + 16])
            found.append((owner, esl[entry + 16 : entry + entry_size]))
            entry += entry_size
        at += list_size
    return found
