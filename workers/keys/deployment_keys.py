"""One set of keys per deployment: what `prepare` records and every process checks at start.

Every worker of a scaled deployment must sign with the same asset signing key and the same
SecureBoot key, and every web process must serve their public halves: otherwise two web
machines serve different public keys, and a SecureBoot build planned with one certificate
and built with another fails. So in the scaled mode nothing is generated behind the
operator's back:

- `image-factory prepare` generates the keys that are not configured (or takes the
  configured ones), says where they are, and records their fingerprints and public halves
  in the store (`deployment/keys.json`, `workers.keys.public_keys`);
- `image-factory worker` refuses to start unless the keys are configured
  (`IMAGE_FACTORY_SIGNING_KEY`, `IMAGE_FACTORY_SECUREBOOT_KEY` and `_CERT`, PEM files),
  readable, and the ones the store records: a mismatch is reported as such, naming both
  fingerprints;
- `image-factory serve` holds no private key (signing happens in the workers): it refuses
  to start unless the store records the public halves it serves.

The embedded default (one machine, one data directory) still generates its keys there on
first start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.keys.public_keys import (
    PREPARE_HINT,
    RECORD,
    KeyProblem,
    PublicKeys,
    read_record,
    record_public_keys,
    recorded_public_keys,
)
from workers.keys.secureboot_key import SecureBootKey, load_secureboot_key, secureboot_paths
from workers.keys.signing import SigningKey, key_path, load_or_create_signing_key
from workers.settings import Settings
from workers.store import Store

__all__ = ["RECORD", "Fingerprints", "KeyProblem", "check_deployment_keys", "check_public_keys"]


@dataclass(frozen=True)
class Fingerprints:
    """sha256 of the signing key's public key (PKIX DER) and of the SecureBoot certificate."""

    signing_key: str
    secureboot_cert: str

    @classmethod
    def of(cls, signing: SigningKey, secureboot: SecureBootKey) -> Fingerprints:
        return cls.of_public(public_halves(signing, secureboot))

    @classmethod
    def of_public(cls, keys: PublicKeys) -> Fingerprints:
        return cls(keys.signing_key_fingerprint, keys.secureboot_cert_fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {"signing_key": self.signing_key, "secureboot_cert": self.secureboot_cert}


def public_halves(signing: SigningKey, secureboot: SecureBootKey) -> PublicKeys:
    return PublicKeys(signing.public_key_pem, secureboot.cert_pem)


def recorded_fingerprints(store: Store) -> Fingerprints | None:
    """The fingerprints `prepare` recorded, None when it never ran on this store."""
    doc = read_record(store)
    if doc is None:
        return None
    return Fingerprints(str(doc["signing_key"]), str(doc["secureboot_cert"]))


def record_keys(store: Store, signing: SigningKey, secureboot: SecureBootKey) -> Fingerprints:
    """Record the keys' fingerprints and public halves as the deployment's."""
    record_public_keys(store, public_halves(signing, secureboot))
    return Fingerprints.of(signing, secureboot)


def check_public_keys(store: Store) -> Fingerprints:
    """Start-up check of `serve` in the scaled mode: the store records the public halves it
    serves (and no key file is needed); their fingerprints."""
    keys = recorded_public_keys(store)
    found = Fingerprints.of_public(keys)
    if found != recorded_fingerprints(store):
        raise KeyProblem(
            f"the store's key record ({RECORD}) is inconsistent: its public halves do not have "
            f"the fingerprints it records; {PREPARE_HINT}"
        )
    return found


def require_configured_keys(settings: Settings) -> tuple[SigningKey, SecureBootKey]:
    """The configured keys, loaded; `KeyProblem` saying what to set when one is not."""
    unset = [
        name
        for name, value in (
            ("IMAGE_FACTORY_SIGNING_KEY", settings.signing_key),
            ("IMAGE_FACTORY_SECUREBOOT_KEY", settings.secureboot_key),
            ("IMAGE_FACTORY_SECUREBOOT_CERT", settings.secureboot_cert),
        )
        if not value
    ]
    if unset:
        raise KeyProblem(
            f"{', '.join(unset)} not set: in the scaled mode every process signs with the "
            f"deployment's keys and none generates its own; set each to its PEM file "
            f"(`image-factory prepare` says where it wrote them), or {PREPARE_HINT}"
        )
    try:
        signing = load_or_create_signing_key(settings)
        secureboot = load_secureboot_key(*secureboot_paths(settings))
    except (OSError, ValueError) as error:
        raise KeyProblem(f"cannot load the deployment's keys: {error}") from error
    return signing, secureboot


def check_deployment_keys(settings: Settings, store: Store) -> Fingerprints:
    """Start-up check of `serve` and `worker` in the scaled mode: the keys are configured,
    load, and are the ones recorded in the store; their fingerprints."""
    found = Fingerprints.of(*require_configured_keys(settings))
    recorded = recorded_fingerprints(store)
    if recorded is None:
        raise KeyProblem(f"the store records no deployment keys ({RECORD}): {PREPARE_HINT}")
    mismatches = []
    if found.signing_key != recorded.signing_key:
        mismatches.append(
            f"IMAGE_FACTORY_SIGNING_KEY ({key_path(settings)}) has public key sha256 "
            f"{found.signing_key}, the deployment's is {recorded.signing_key}"
        )
    if found.secureboot_cert != recorded.secureboot_cert:
        mismatches.append(
            f"IMAGE_FACTORY_SECUREBOOT_CERT ({settings.secureboot_cert}) has sha256 "
            f"{found.secureboot_cert}, the deployment's is {recorded.secureboot_cert}"
        )
    if mismatches:
        raise KeyProblem(
            "key mismatch: this process would sign with other keys than the rest of the "
            f"deployment: {'; '.join(mismatches)}. Give every process the key files "
            "`image-factory prepare` wrote (or recorded)"
        )
    return found
