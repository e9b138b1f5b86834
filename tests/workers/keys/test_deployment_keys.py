"""Every process of a scaled deployment signs with the keys `prepare` recorded, or stops."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from workers.keys.deployment_keys import (
    Fingerprints,
    KeyProblem,
    check_deployment_keys,
    check_public_keys,
    record_keys,
)
from workers.keys.public_keys import RECORD, load_public_keys
from workers.keys.secureboot_key import load_or_create_secureboot_key
from workers.keys.signing import load_or_create_signing_key
from workers.settings import Settings
from workers.store import LocalStore


def _configured(tmp_path: Path, name: str) -> Settings:
    keys = tmp_path / name
    return Settings(
        data_dir=tmp_path / f"{name}-data",
        broker_url="redis://127.0.0.1:1/0",
        signing_key=str(keys / "signing-key.pem"),
        secureboot_key=str(keys / "sb-key.pem"),
        secureboot_cert=str(keys / "sb-cert.pem"),
    )


def _prepared(settings: Settings, store: LocalStore) -> Fingerprints:
    """What `prepare` does with the keys: create the configured files, record them."""
    return record_keys(
        store,
        load_or_create_signing_key(settings, create_configured=True),
        load_or_create_secureboot_key(settings, create_configured=True),
    )


def test_the_recorded_keys_pass(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    settings = _configured(tmp_path, "keys")
    recorded = _prepared(settings, store)
    assert check_deployment_keys(settings, store) == recorded


def test_unset_keys_are_named_and_nothing_is_generated(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _prepared(_configured(tmp_path, "keys"), store)
    bare = Settings(data_dir=tmp_path / "bare", broker_url="redis://127.0.0.1:1/0")
    with pytest.raises(KeyProblem, match="IMAGE_FACTORY_SIGNING_KEY, IMAGE_FACTORY_SECUREBOOT_KEY"):
        check_deployment_keys(bare, store)
    assert not (tmp_path / "bare").exists()


def test_a_configured_file_that_is_missing_is_named(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    settings = _configured(tmp_path, "keys")
    _prepared(settings, store)
    gone = dataclasses.replace(settings, signing_key=str(tmp_path / "nowhere.pem"))
    with pytest.raises(KeyProblem, match=r"nowhere\.pem, which does not exist"):
        check_deployment_keys(gone, store)


def test_a_store_prepare_never_saw_says_to_run_it(tmp_path: Path) -> None:
    settings = _configured(tmp_path, "keys")
    _prepared(settings, LocalStore(tmp_path / "elsewhere"))
    with pytest.raises(KeyProblem, match="run `image-factory prepare`"):
        check_deployment_keys(settings, LocalStore(tmp_path / "store"))


def test_other_keys_are_a_mismatch_naming_both_fingerprints(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    recorded = _prepared(_configured(tmp_path, "deployment"), store)
    other = _configured(tmp_path, "other")
    mine = _prepared(other, LocalStore(tmp_path / "other-store"))
    with pytest.raises(KeyProblem) as refused:
        check_deployment_keys(other, store)
    message = str(refused.value)
    assert message.startswith("key mismatch")
    for fingerprint in (recorded.signing_key, mine.signing_key):
        assert fingerprint in message
    for fingerprint in (recorded.secureboot_cert, mine.secureboot_cert):
        assert fingerprint in message


def test_the_web_side_gets_the_public_halves_from_the_store_alone(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    settings = _configured(tmp_path, "keys")
    recorded = _prepared(settings, store)
    signing = load_or_create_signing_key(settings)
    secureboot = load_or_create_secureboot_key(settings)
    # A web process: scaled, no key file configured, nothing in its data directory.
    web = Settings(data_dir=tmp_path / "web", broker_url="redis://127.0.0.1:1/0")

    public = load_public_keys(web, store)

    assert public.signing_key_pem == signing.public_key_pem
    assert public.signing_key_hint == signing.public_key_hint
    assert public.secureboot_cert_pem == secureboot.cert_pem
    assert public.secureboot_cert_fingerprint == secureboot.fingerprint
    assert check_public_keys(store) == recorded
    assert b"PRIVATE" not in store.get_bytes(RECORD)
    assert not (tmp_path / "web").exists()


def test_a_store_without_public_halves_says_to_run_prepare_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    found = _prepared(_configured(tmp_path, "keys"), store)
    # What an older `prepare` recorded: the fingerprints only.
    store.put_bytes(RECORD, json.dumps(found.to_json()).encode())
    with pytest.raises(KeyProblem, match="run `image-factory prepare` again"):
        check_public_keys(store)


def test_a_record_whose_halves_do_not_match_its_fingerprints_is_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _prepared(_configured(tmp_path, "keys"), store)
    record = json.loads(store.get_bytes(RECORD))
    record["signing_key"] = "0" * 64
    store.put_bytes(RECORD, json.dumps(record).encode())
    with pytest.raises(KeyProblem, match="inconsistent"):
        check_public_keys(store)
