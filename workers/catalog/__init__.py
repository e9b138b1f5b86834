"""Extensions and overlays in the store: add, list per release, resolve, fetch, extract.

The public API (what planning and assembly use) is re-exported here.
"""

from __future__ import annotations

from workers.catalog.bundled import install_bundled_extensions
from workers.catalog.extensions import (
    CorruptObject,
    add_extension,
    catalog_for,
    extract_extension,
    fetch_extension,
    list_extension_records,
    resolve_extensions,
)
from workers.catalog.overlays import (
    add_overlay,
    check_overlay_options,
    fetch_overlay,
    overlay_catalog_for,
    prepare_overlay,
    resolve_overlay,
)
from workers.catalog.records import ExtensionRecord, OverlayRecord, registry_host

__all__ = [
    "CorruptObject",
    "ExtensionRecord",
    "OverlayRecord",
    "add_extension",
    "add_overlay",
    "catalog_for",
    "check_overlay_options",
    "extract_extension",
    "fetch_extension",
    "fetch_overlay",
    "install_bundled_extensions",
    "list_extension_records",
    "overlay_catalog_for",
    "prepare_overlay",
    "registry_host",
    "resolve_extensions",
    "resolve_overlay",
]
