"""Object storage: one interface, a local-directory and an S3 implementation.

Keys are `/`-separated relative paths (`schematics/<id>`, `blobs/sha256/<hex>`, ...).
A missing key raises `ObjectNotFound` in every implementation.
"""

from __future__ import annotations

from workers.backends import Backend
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


def make_store(backend: Backend) -> Store:
    """The store `backend` keeps objects in: its S3 bucket, or `<data dir>/store`."""
    if backend.s3 is not None:
        from workers.store.s3 import S3Store

        return S3Store.in_bucket(backend.s3)
    return LocalStore(backend.data_dir / "store")
