"""On a host that cannot sandbox build tools, schematics with uploaded extensions or overlays
are refused at plan time (unless the operator allows it); bundled ones still build.

The missing sandbox is simulated (`sandbox_problem`); the real probe is checked too."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.workers.releases.fakes import save_fake_release
from workers.assembly import run
from workers.catalog import add_extension
from workers.catalog.records import ORIGIN_BUNDLED
from workers.errors import Refused
from workers.pipeline.sandbox_policy import sandbox_warning
from workers.planning.plans import Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore

EPOCH = 1700000000
NO_BWRAP = "bubblewrap (bwrap) is not installed"


@pytest.fixture
def stocked(store: LocalStore, tmp_path: Path) -> LocalStore:
    save_fake_release(store, "v1.0.0", tmp_path / "releases")
    for name, origin in (("uploaded", "upload"), ("bundled", ORIGIN_BUNDLED)):
        members = hello_members()
        members[0] = file("manifest.yaml", manifest(name, "1.0.0"))
        source = write(tmp_path / f"{name}.tar", tar_bytes(members))
        add_extension(store, source, "factory", EPOCH, origin=origin)
    return store


def _plan(store: LocalStore, settings: Settings, extension: str) -> Plan:
    text = f"customization:\n  systemExtensions:\n    officialExtensions: [{extension}]\n"
    schematic = parse_schematic(text.encode())
    sid = schematic_id(schematic)
    return make_plan(store, schematic, sid, "v1.0.0", parse_profile("metal-amd64.iso"), settings)


def test_this_host_can_sandbox() -> None:
    assert run.sandbox_problem() is None  # bwrap is installed and user namespaces work


def test_with_a_sandbox_uploaded_extensions_build(stocked: LocalStore, settings: Settings) -> None:
    assert sandbox_warning(settings) is None
    assert _plan(stocked, settings, "factory/uploaded").extensions[0].name == "factory/uploaded"


def test_without_a_sandbox_uploaded_extensions_are_refused(
    stocked: LocalStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "sandbox_problem", lambda: NO_BWRAP)
    with pytest.raises(Refused, match=r"cannot sandbox .*\(factory/uploaded\)"):
        _plan(stocked, settings, "factory/uploaded")
    assert _plan(stocked, settings, "factory/bundled").extensions[0].name == "factory/bundled"
    warning = sandbox_warning(settings)
    assert warning is not None
    assert NO_BWRAP in warning
    assert "refused" in warning


def test_the_operator_may_allow_unsandboxed_builds(
    stocked: LocalStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "sandbox_problem", lambda: NO_BWRAP)
    allowed = replace(settings, allow_unsandboxed=True)
    assert _plan(stocked, allowed, "factory/uploaded").extensions[0].name == "factory/uploaded"
    warning = sandbox_warning(allowed)
    assert warning is not None
    assert "UNSANDBOXED" in warning
    assert Settings.from_env({"IMAGE_FACTORY_ALLOW_UNSANDBOXED": "true"}).allow_unsandboxed
