from __future__ import annotations

import hashlib

import pytest

from schematics import Customization, Schematic, canonical_bytes, schematic_id
from workers.errors import NotFound
from workers.outputs.schematics_store import (
    load_schematic,
    load_schematic_bytes,
    save_schematic,
    schematic_key,
)
from workers.store import LocalStore

SCHEMATIC = Schematic(customization=Customization(extra_kernel_args=("noapic",)))


def test_save_stores_the_canonical_bytes_under_the_id(store: LocalStore) -> None:
    saved_id = save_schematic(store, SCHEMATIC)
    assert saved_id == schematic_id(SCHEMATIC)
    assert list(store.list("schematics/")) == [f"schematics/{saved_id}"]
    assert store.get_bytes(schematic_key(saved_id)) == canonical_bytes(SCHEMATIC)


def test_saving_again_leaves_the_object_alone(store: LocalStore) -> None:
    saved_id = save_schematic(store, SCHEMATIC)
    before = store.path(schematic_key(saved_id)).stat()
    assert save_schematic(store, SCHEMATIC) == saved_id
    after = store.path(schematic_key(saved_id)).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_saving_repairs_a_damaged_object(store: LocalStore) -> None:
    key = schematic_key(schematic_id(SCHEMATIC))
    store.put_bytes(key, b"damaged")
    save_schematic(store, SCHEMATIC)
    assert store.get_bytes(key) == canonical_bytes(SCHEMATIC)


def test_load_round_trip(store: LocalStore) -> None:
    saved_id = save_schematic(store, SCHEMATIC)
    assert load_schematic(store, saved_id) == SCHEMATIC
    assert load_schematic_bytes(store, saved_id) == canonical_bytes(SCHEMATIC)


@pytest.mark.parametrize(
    "bad_id",
    ["a" * 64, "aaaaaaaaaaaa", "A" * 64, "../" + "a" * 61, "", "g" * 64, "a" * 65],
)
def test_unknown_or_malformed_ids_are_not_found(store: LocalStore, bad_id: str) -> None:
    with pytest.raises(NotFound) as caught:
        load_schematic(store, bad_id)
    assert str(caught.value) == f'schematic ID "{bad_id}" not found'


def test_an_object_that_does_not_hash_to_its_id_is_not_served(store: LocalStore) -> None:
    other = b"customization: {}\n"
    wrong_id = hashlib.sha256(b"something else").hexdigest()
    store.put_bytes(schematic_key(wrong_id), other)
    with pytest.raises(NotFound, match="not found"):
        load_schematic_bytes(store, wrong_id)
