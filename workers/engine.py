"""The engine facade: what every route, the CLI and the registry ask of the build side.

No HTTP in here. One `Engine` per process (made with the web app, or by a worker, the CLI)
holds the settings, the store, the backend chosen from the settings (`workers.backends`) and
the shared services made from them (coordination, queue, usage, metrics, keys); those open
their connections on first use, so none is shared across a fork. It also remembers
what a cache hit would otherwise read from the store on every request:
- schematics by ID and build manifests by key, which never change once written (a discarded
  build is forgotten with `forget_build`);
- resolved plans for `PLAN_SECONDS`: a release re-imported or an extension added to the
  catalog takes effect within that long in each process.

`plan` (cached, records what a build needs), `preview_plan` (writes nothing), `find_built`
(verified), `queue.submit` (obtain or enqueue, single flight).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, TypeVar

from schematics import Schematic
from workers.backends import Backend
from workers.dispatch.build_queue import BuildQueue
from workers.dispatch.coordination import Coordination, make_coordination
from workers.dispatch.shared_metrics import Metrics, make_metrics
from workers.keys.public_keys import PublicKeys, load_public_keys
from workers.keys.signing import SigningKey, load_or_create_signing_key
from workers.outputs.finished_builds import BuiltAsset, read_manifest
from workers.outputs.integrity import BlobVerifier
from workers.outputs.schematics_store import load_schematic
from workers.outputs.storage_budget import DownloadRecorder
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import Profile
from workers.registry.publishing import InstallerPublisher
from workers.settings import Settings
from workers.store import Store
from workers.tenancy.usage import Usage, make_usage

PLAN_SECONDS = 10.0
MEMO_ENTRIES = 4096

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
    # Decided once where the process starts (`choose_backend`); every connection is made from it.
    backend: Backend
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

    def preview_plan(
        self, schematic: Schematic, schematic_id: str, version: str, profile: Profile
    ) -> Plan:
        """The plan a build would get, without writing anything to the store (pages that only
        show what a build would be); not remembered."""
        return make_plan(
            self.store, schematic, schematic_id, version, profile, self.settings, record=False
        )

    def find_built(
        self, plan: Plan, trust_seconds: float = 0.0, rehash_after: float | None = None
    ) -> BuiltAsset | None:
        """The finished build of `plan`, if its stored bytes still match its digest (as checked
        within the last `trust_seconds`; 0: look at the store now; with `rehash_after`, hashed
        in full within that many seconds)."""
        built = self.manifest(plan.key)
        if built is None:
            return None
        if not self.verifier.check(self.store, built, trust_seconds, rehash_after):
            self.forget_build(plan.key)
            self.metrics.count("image_factory_corrupt_blobs_total")
            return None
        return built

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
        return make_coordination(self.backend)

    @cached_property
    def queue(self) -> BuildQueue:
        return BuildQueue(self.settings, self.backend, self.store, self.coordination, self.usage)

    @cached_property
    def usage(self) -> Usage:
        return make_usage(self.backend)

    @cached_property
    def metrics(self) -> Metrics:
        return make_metrics(self.backend)

    @cached_property
    def downloads(self) -> DownloadRecorder:
        return DownloadRecorder()

    @cached_property
    def verifier(self) -> BlobVerifier:
        return BlobVerifier()

    @cached_property
    def signing_key(self) -> SigningKey:
        """The private signing key: workers only (never asked for on the web side)."""
        return load_or_create_signing_key(self.settings)

    @cached_property
    def public_keys(self) -> PublicKeys:
        """The public halves of the deployment's keys: the web side signs nothing."""
        return load_public_keys(self.settings, self.store)

    @cached_property
    def publisher(self) -> InstallerPublisher:
        """Has a worker publish (and sign) an installer tag."""
        return InstallerPublisher(self.settings, self.backend)
