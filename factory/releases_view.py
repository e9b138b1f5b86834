"""The release read-model of the HTML pages: what the store offers, read once per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from factory.engine import engine
from factory.offered import version_policy
from workers.catalog import ExtensionRecord, OverlayRecord, catalog_for, overlay_catalog_for
from workers.errors import NotFound
from workers.releases.modules import module_index
from workers.releases.stored import list_versions, load_release

_T = TypeVar("_T")


class Releases:
    """What the store offers, each fact read at most once per request."""

    def __init__(self) -> None:
        self.store = engine().store
        self._memo: dict[tuple[str, ...], Any] = {}

    def _once(self, key: tuple[str, ...], read: Callable[[], _T]) -> _T:
        if key not in self._memo:
            self._memo[key] = read()
        value: _T = self._memo[key]
        return value

    @property
    def versions(self) -> list[str]:
        offered = version_policy().offered
        return self._once(("versions",), lambda: offered(list_versions(self.store)))

    def has_arch(self, version: str, arch: str) -> bool:
        def read() -> bool:
            try:
                load_release(self.store, version, arch)
            except NotFound:
                return False
            return True

        return self._once(("arch", version, arch), read)

    def extensions(self, version: str, arch: str) -> list[ExtensionRecord]:
        return self._once(
            ("extensions", version, arch), lambda: catalog_for(self.store, version, arch)
        )

    def overlays(self, version: str) -> list[OverlayRecord]:
        return self._once(("overlays", version), lambda: overlay_catalog_for(self.store, version))

    def modules(self, version: str, arch: str) -> list[str]:
        def read() -> list[str]:
            return module_index(self.store, load_release(self.store, version, arch)).names()

        return self._once(("modules", version, arch), read)

    def overlay(self, version: str, name: str) -> OverlayRecord | None:
        return next((o for o in self.overlays(version) if o.name == name), None)
