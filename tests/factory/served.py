"""An app on a synthetic release with a build worker running, shared by a test module.

`served(tmp_path_factory)` gives the Flask test client, the local store, the settings and a
stored schematic; a real build worker (`tests.workers.build_worker`) builds what the tests
ask for, as `image-factory serve`'s worker would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from factory import create_app
from schematics import parse_schematic
from tests.workers.build_worker import build_worker
from tests.workers.releases.fakes import save_fake_release
from workers.outputs.schematics_store import save_schematic
from workers.settings import Settings
from workers.store import LocalStore

SCHEMATIC = b"customization:\n  extraKernelArgs: [console=ttyS0, -console=tty0]\n"


@dataclass(frozen=True)
class Served:
    client: FlaskClient
    store: LocalStore
    settings: Settings
    schematic_id: str

    def url(self, path: str) -> str:
        return f"/image/{self.schematic_id}/v1.0.0/{path}"


@contextlib.contextmanager
def served(tmp_path_factory: pytest.TempPathFactory, **options: object) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    settings = Settings(data_dir=root / "data", **options)  # type: ignore[arg-type]
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", root / "releases")
    schematic_id = save_schematic(store, parse_schematic(SCHEMATIC))
    client = create_app(settings, store=store).test_client()
    with build_worker(settings):
        yield Served(client, store, settings, schematic_id)
