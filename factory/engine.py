"""The per-process engine objects the build, download and metrics routes share.

Made on first use in each process (gunicorn forks its web processes after the app is
built, and connections must not be shared across a fork), then kept on the app.

It also remembers what a cache hit would otherwise read from the store on every request:
- schematics by ID and build manifests by key, which never change once written (a discarded
  build is forgotten with `forget_build`);
- resolved plans for `PLAN_SECONDS`: a release re-imported or an extension added to the
  catalog takes effect within that long in each web process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, TypeVar

from flask import current_app

from factory.services import services
from schematics import Schematic
from workers.builds import BuiltAsset, read_manifest
from workers.coordination import Coordination, make_coordination
from workers.integrity import BlobVerifier
from workers.metrics import Metrics, make_metrics
from workers.plans import Plan, make_plan
from workers.profiles import Profile
from workers.public_keys import PublicKeys, load_public_keys
from workers.queue import BuildQueue
from workers.registry.publishing import InstallerPublisher
from workers.schematics_store import load_schematic
from workers.settings import Settings
from workers.storage import DownloadRecorder
from workers.store import Store
from workers.usage import Usage, make_usage

ENGINE_KEY = "image_factory_engine"
PLAN_SECONDS = 10.0
MEMO_ENTRIES = 4096
_lock = threading.Lock()

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded map whose entries expire `seconds` after they were stored."""

    def __init__(self, seconds: float = float("inf"), entries: int = MEMO_ENTRIES) -> None:
        self._seconds = seconds
        self._entries = entries
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._guard:
            found = self._data.get(key)
            if found is None or time.monotonic() - found[0] > self._seconds:
                return None
            self._data.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V) -> None:
        with self._guard:
            self._data[key] = (time.monotonic(), value)
            self._data.move_to_end(key)
            while len(self._data) > self._entries:
                self._data.popitem(last=False)

    def drop(self, key: K) -> None:
        with self._guard:
            self._data.pop(key, None)


@dataclass
class Engine:
    settings: Settings
    store: Store
    _schematics: Memo[str, Schematic] = field(default_factory=Memo)
    _plans: Memo[tuple[str, str, str], Plan] = field(default_factory=lambda: Memo(PLAN_SECONDS))
    _manifests: Memo[str, BuiltAsset] = field(default_factory=Memo)

    def schematic(self, schematic_id: str) -> Schematic:
        found = self._schematics.get(schematic_id)
        if found is None:
            found = load_schematic(self.store, schematic_id)
            self._schematics.put(schematic_id, found)
        return found

    def plan(self, schematic_id: str, version: str, profile: Profile) -> Plan:
        """`make_plan` for these inputs, remembered for `PLAN_SECONDS`."""
        key = (schematic_id, version, profile.path)
        found = self._plans.get(key)
        if found is None:
            schematic = self.schematic(schematic_id)
            found = make_plan(self.store, schematic, schematic_id, version, profile, self.settings)
            self._plans.put(key, found)
        return found

    def manifest(self, key: str) -> BuiltAsset | None:
        """The build manifest of `key` as written (remembered once read)."""
        found = self._manifests.get(key)
        if found is None:
            found = read_manifest(self.store, key)
            if found is not None:
                self._manifests.put(key, found)
        return found

    def forget_build(self, key: str) -> None:
        self._manifests.drop(key)

    @cached_property
    def coordination(self) -> Coordination:
        return make_coordination(self.settings)

    @cached_property
    def queue(self) -> BuildQueue:
        return BuildQueue(self.settings, self.store, self.coordination, self.usage)

    @cached_property
    def usage(self) -> Usage:
        return make_usage(self.settings)

    @cached_property
    def metrics(self) -> Metrics:
        return make_metrics(self.settings)

    @cached_property
    def downloads(self) -> DownloadRecorder:
        return DownloadRecorder()

    @cached_property
    def verifier(self) -> BlobVerifier:
        return BlobVerifier()

    @cached_property
    def public_keys(self) -> PublicKeys:
        """The public halves of the deployment's keys; the web side signs nothing."""
        return load_public_keys(self.settings, self.store)

    @cached_property
    def publisher(self) -> InstallerPublisher:
        return InstallerPublisher(self.settings)


def engine() -> Engine:
    """This process's engine for the app handling the current request."""
    found: Engine | None = current_app.extensions.get(ENGINE_KEY)
    if found is None:
        with _lock:
            found = current_app.extensions.get(ENGINE_KEY)
            if found is None:
                svc = services()
                found = current_app.extensions[ENGINE_KEY] = Engine(svc.settings, svc.store)
    return found
