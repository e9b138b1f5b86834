"""Object storage: one interface, a local-directory and an S3 implementation.

Keys are `/`-separated relative paths (`schematics/<id>`, `blobs/sha256/<hex>`, ...).
A missing key raises `ObjectNotFound` in every implementation.
"""

from __future__ import annotations

from workers.backends import choose_backend
from workers.settings import Settings
from workers.store.base import (
    ObjectNotFound,
    ObjectStat,
    Store,
    StoreUnavailable,
    validate_key,
)
from workers.store.local import LocalStore

__all__ = [
    "LocalStore",
    "ObjectNotFound",
    "ObjectStat",
    "Store",
    "StoreUnavailable",
    "make_store",
    "validate_key",
]


def make_store(settings: Settings) -> Store:
    """The store the settings' backend keeps objects in: S3, or the data directory."""
    if choose_backend(settings).objects_in_s3:
        from workers.store.s3 import S3Store

        return S3Store.from_settings(settings)
    return LocalStore(settings.data_dir / "store")
