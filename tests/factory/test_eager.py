"""`IMAGE_FACTORY_EAGER_INSTALLER_VERSIONS`: creating a schematic queues its installer builds
for the listed versions (a version not stored is skipped), and nothing without the setting."""

from __future__ import annotations

from pathlib import Path

from factory import create_app
from factory.engine import engine
from schematics import parse_schematic
from tests.workers.releases.fakes import save_fake_release
from workers.dispatch.build_queue import QUEUED
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore

BODY = b"customization:\n  extraKernelArgs: [eager=1]\n"


def _create(tmp_path: Path, versions: str) -> str | None:
    settings = Settings(data_dir=tmp_path / "data", eager_installer_versions=versions)
    store = LocalStore(settings.data_dir / "store")
    save_fake_release(store, "v1.0.0", tmp_path)
    app = create_app(settings, store=store)
    response = app.test_client().post("/schematics", data=BODY)
    assert response.status_code == 201
    sid = response.get_json()["id"]
    profile = parse_profile("installer-amd64.tar")
    plan = make_plan(store, parse_schematic(BODY), sid, "v1.0.0", profile, settings)
    with app.app_context():
        status = engine().queue.status(plan.key)
    return status.state if status is not None else None


def test_listed_versions_are_queued_when_the_schematic_is_created(tmp_path: Path) -> None:
    assert _create(tmp_path, "v9.9.9, v1.0.0") == QUEUED


def test_nothing_is_queued_without_the_setting(tmp_path: Path) -> None:
    assert _create(tmp_path, "") is None
