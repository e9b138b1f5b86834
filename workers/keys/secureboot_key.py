"""The SecureBoot signing key: Authenticode signatures for UKIs and systemd-boot, and the key
databases (`PK.auth`, `KEK.auth`, `db.auth`) that enroll it.

Key material: RSA 2048 and a self-signed X.509 certificate (SHA-256, CA:TRUE, the shape
`openssl req -x509` makes and OVMF accepts as PK, KEK and db). Configured with
`IMAGE_FACTORY_SECUREBOOT_KEY` + `IMAGE_FACTORY_SECUREBOOT_CERT` (PEM files, both or neither);
otherwise generated once on first use into `<data dir>/keys/` and kept. A scaled deployment
must configure them: every worker has to sign with the same key.

`sign_pe` runs `sbsign` (Authenticode, RSA PKCS#1 v1.5, which is deterministic). sbsign also
puts the clock into the signature's signingTime attribute, so it runs under `faketime` with
the clock frozen at the build's epoch: the same input, key and epoch give the same bytes.

`enrollment_files` follows Talos (talos-formats §6.5): PK, KEK and db each hold our
certificate (as DER), each is signed by our key (accepted because the firmware is in setup
mode while enrolling). `includeWellKnownCertificates` adds Microsoft's KEK and UEFI CAs to KEK
and db. Those certificates cannot be fetched offline, so the operator provides them:
`IMAGE_FACTORY_SECUREBOOT_WELL_KNOWN_CERTS` names a directory with `kek/*.der` and `db/*.der`
(the layout of Talos' `internal/pkg/secureboot/database/certs`). Without it a schematic asking
for them gets a 400 that says so, instead of an image that silently lacks them.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from workers.assembly.run import run_tool, sandboxed
from workers.errors import InvalidRequest
from workers.keys.efi_auth import (
    DATABASES,
    MICROSOFT_OWNER,
    authenticated_variable,
    owner_guid,
    signature_list,
)
from workers.settings import Settings

KEY_FILE = Path("keys") / "secureboot-signing-key.pem"
CERT_FILE = Path("keys") / "secureboot-signing-cert.pem"
SUBJECT = "Image Factory SecureBoot signing key"
KEY_BITS = 2048
WELL_KNOWN_DIRS = {"KEK": "kek", "db": "db"}


@dataclass(frozen=True)
class SecureBootKey:
    key_path: Path
    cert_path: Path
    private_key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        """sha256 of the DER certificate: what a build's plan records about the key."""
        return hashlib.sha256(self.cert_der).hexdigest()


def secureboot_paths(settings: Settings) -> tuple[Path, Path]:
    if bool(settings.secureboot_key) != bool(settings.secureboot_cert):
        raise ValueError(
            "IMAGE_FACTORY_SECUREBOOT_KEY and IMAGE_FACTORY_SECUREBOOT_CERT go together: "
            "set both or neither"
        )
    if settings.secureboot_key:
        return Path(settings.secureboot_key), Path(settings.secureboot_cert)
    return settings.data_dir / KEY_FILE, settings.data_dir / CERT_FILE


def load_secureboot_key(key_path: Path, cert_path: Path) -> SecureBootKey:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: the SecureBoot key must be an RSA private key")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey) or (
        public.public_numbers() != key.public_key().public_numbers()
    ):
        raise ValueError(f"{cert_path} does not belong to the key {key_path}")
    return SecureBootKey(key_path, cert_path, key, cert)


def load_or_create_secureboot_key(
    settings: Settings, create_configured: bool = False
) -> SecureBootKey:
    """The configured key + cert, or the generated pair in the data dir (created once).
    Configured files that do not exist are an error, unless `create_configured` (what
    `image-factory prepare` asks for) says to create them there."""
    key_path, cert_path = secureboot_paths(settings)
    configured = settings.secureboot_key and not create_configured
    if configured or (key_path.exists() and cert_path.exists()):
        return load_secureboot_key(key_path, cert_path)
    key_pem, cert_pem = generate_secureboot_pair()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    # Written to temp names and renamed: two processes starting at once keep one pair
    # (the cert is renamed first, the key last; the key's presence decides below).
    suffix = f".{os.getpid()}.tmp"
    tmp_key, tmp_cert = (
        key_path.with_name(key_path.name + suffix),
        cert_path.with_name(cert_path.name + suffix),
    )
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    tmp_cert.write_bytes(cert_pem)
    try:
        os.link(tmp_key, key_path)
        os.replace(tmp_cert, cert_path)
    except FileExistsError:
        pass  # another process won the race; its pair is the one to load
    finally:
        tmp_key.unlink(missing_ok=True)
        tmp_cert.unlink(missing_ok=True)
    return load_secureboot_key(key_path, cert_path)


def generate_secureboot_pair() -> tuple[bytes, bytes]:
    """A new RSA key and self-signed certificate, both PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        # RFC 5280's "no well-defined expiration date".
        .not_valid_after(datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def sign_pe(key: SecureBootKey, src: Path, dest: Path, *, epoch: int) -> Path:
    """Authenticode-sign the PE file `src` into `dest` with `sbsign`, signing time = `epoch`.

    sbsign is the one tool that sees the private key, so it runs in a sandbox of its own: the
    finished PE file and the key read-only, a fresh output directory, nothing of the build
    (no process that unpacked uploaded content can read the key)."""
    frozen = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    out_dir = dest.with_name(dest.name + ".out")
    out_dir.mkdir()
    signed = out_dir / dest.name
    with sandboxed(out_dir, readable=(src, key.key_path, key.cert_path)):
        run_tool(
            [
                "faketime",
                "-f",  # the advanced format: an absolute time without "@" stays frozen
                frozen,
                "sbsign",
                "--key",
                key.key_path,
                "--cert",
                key.cert_path,
                "--output",
                signed,
                src,
            ],
            env={"TZ": "UTC", "FAKETIME_DONT_FAKE_MONOTONIC": "1"},
        )
    signed.rename(dest)
    out_dir.rmdir()
    return dest


@dataclass(frozen=True)
class WellKnownCerts:
    """Operator-provided DER certificates added with `includeWellKnownCertificates`."""

    kek: tuple[bytes, ...]
    db: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        """What a build's plan records about them (their content, in order)."""
        h = hashlib.sha256()
        for group in (self.kek, self.db):
            h.update(len(group).to_bytes(4, "big"))
            for der in group:
                h.update(hashlib.sha256(der).digest())
        return h.hexdigest()


def load_well_known_certs(settings: Settings) -> WellKnownCerts:
    """The configured well-known certificates; InvalidRequest when none are configured."""
    if not settings.secureboot_well_known_certs:
        raise InvalidRequest(
            "includeWellKnownCertificates needs Microsoft's UEFI certificates, which this "
            "factory does not ship: the operator must set IMAGE_FACTORY_SECUREBOOT_WELL_KNOWN_"
            "CERTS to a directory with kek/*.der and db/*.der"
        )
    root = Path(settings.secureboot_well_known_certs)
    groups: dict[str, tuple[bytes, ...]] = {}
    for database, sub in WELL_KNOWN_DIRS.items():
        files = sorted((root / sub).glob("*.der"))
        if not files:
            raise InvalidRequest(
                f"IMAGE_FACTORY_SECUREBOOT_WELL_KNOWN_CERTS: no {sub}/*.der certificates in {root}"
            )
        for path in files:
            try:
                x509.load_der_x509_certificate(path.read_bytes())
            except ValueError:
                raise ValueError(f"{path}: not a DER certificate") from None
        groups[database] = tuple(path.read_bytes() for path in files)
    return WellKnownCerts(kek=groups["KEK"], db=groups["db"])


@dataclass(frozen=True)
class Signer:
    """What a build signs with: the key, plus the well-known certificates when configured."""

    key: SecureBootKey
    well_known: WellKnownCerts | None


def load_signer(settings: Settings) -> Signer:
    well_known = load_well_known_certs(settings) if settings.secureboot_well_known_certs else None
    return Signer(load_or_create_secureboot_key(settings), well_known)


def enrollment_files(
    key: SecureBootKey, epoch: int, well_known: WellKnownCerts | None = None
) -> dict[str, bytes]:
    """`{"PK.auth", "KEK.auth", "db.auth"}` enrolling our certificate (+ the well-known ones)."""
    ours = signature_list([key.cert_der], owner_guid(key.cert_der))
    extra = {
        "PK": b"",
        "KEK": signature_list(well_known.kek, MICROSOFT_OWNER) if well_known else b"",
        "db": signature_list(well_known.db, MICROSOFT_OWNER) if well_known else b"",
    }
    return {
        f"{name}.auth": authenticated_variable(
            name, guid, ours + extra[name], key=key.private_key, cert=key.cert, epoch=epoch
        )
        for name, guid in DATABASES.items()
    }
