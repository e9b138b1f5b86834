"""Finished builds: stored once per plan key, manifest last, rebuilt when the blob is gone."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from schematics import parse_schematic, schematic_id
from tests.workers.releases.fakes import save_fake_release
from workers.assembly.run import ToolError, run_tool, sandboxed
from workers.outputs.finished_builds import (
    build_manifest_key,
    load_built,
)
from workers.pipeline import build_asset as build_module
from workers.pipeline import build_once as builds_module
from workers.pipeline.build_once import ensure_built
from workers.planning.asset_kinds import content_type_for
from workers.planning.plans import ExtensionInput, Plan, make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("metal-amd64.iso", "application/x-iso9660-image"),
        ("metal-amd64-uki.efi", "application/efi"),
        ("initramfs-amd64.xz", "application/x-xz"),
        ("metal-amd64.raw.xz", "application/x-xz"),
        ("gcp-amd64.raw.tar.gz", "application/gzip"),
        ("metal-amd64.qcow2", "application/x-qemu-disk"),
        ("installer-amd64.tar", "application/x-tar"),
        ("metal-amd64.raw.zst", "application/zstd"),
        ("metal-amd64.raw", "application/octet-stream"),
        ("kernel-amd64", "application/octet-stream"),
        ("cmdline-metal-amd64", "application/octet-stream"),
    ],
)
def test_content_types_follow_upstream(path: str, content_type: str) -> None:
    assert content_type_for(path) == content_type


@pytest.fixture
def plan(store: LocalStore, settings: Settings, tmp_path: Path) -> Plan:
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    schematic = parse_schematic(b"customization:\n  extraKernelArgs: [quiet]\n")
    return make_plan(
        store,
        schematic,
        schematic_id(schematic),
        "v1.0.0",
        parse_profile("cmdline-metal-amd64"),
        settings,
    )


def test_build_is_stored_with_its_manifest(store: LocalStore, plan: Plan, tmp_path: Path) -> None:
    built = ensure_built(store, plan, tmp_path / "work")
    data = store.get_bytes(built.blob)
    assert built.blob == f"blobs/sha256/{hashlib.sha256(data).hexdigest()}"
    assert built.sha512 == hashlib.sha512(data).hexdigest()
    assert built.size == len(data)
    doc = json.loads(store.get_bytes(build_manifest_key(plan.key)))
    assert doc["plan"] == plan.to_json()
    assert doc["filename"] == "cmdline-metal-amd64"
    assert load_built(store, plan) == built
    assert list((tmp_path / "work").iterdir()) == []  # no build directory left behind


def test_missing_blob_means_rebuild(
    store: LocalStore, plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = ensure_built(store, plan, tmp_path / "work")
    store.delete(built.blob)
    assert load_built(store, plan) is None
    again = ensure_built(store, plan, tmp_path / "work")
    assert again.sha256 == built.sha256
    assert store.exists(again.blob)


def test_failed_build_leaves_no_manifest(
    store: LocalStore, plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> Path:
        raise RuntimeError("tool failed")

    monkeypatch.setattr(builds_module, "build_asset", broken)
    with pytest.raises(RuntimeError):
        ensure_built(store, plan, tmp_path / "work")
    assert not store.exists(build_manifest_key(plan.key))
    assert list((tmp_path / "work").iterdir()) == []


def test_every_tool_of_a_build_runs_sandboxed_in_its_work_directory(
    store: LocalStore, plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str] = {}

    def tools_only(plan: Plan, store: LocalStore, workdir: Path, *args: object) -> Path:
        (workdir / "made-here").write_text("x")
        seen["uid"] = run_tool(["id", "-u"]).decode().strip()
        # A string, not a Path: run_tool checks Path arguments; this shows what bwrap hides.
        seen["tmp_path"] = run_tool(["ls", "-A", str(tmp_path)]).decode()
        seen["workdir"] = run_tool(["ls", "-A", workdir]).decode()
        out = workdir / "asset"
        out.write_text("built")
        return out

    (tmp_path / "canary").write_text("not for tools")
    monkeypatch.setattr(builds_module, "build_asset", tools_only)
    ensure_built(store, plan, tmp_path / "work")
    assert seen["uid"] == "65534"
    # Only the path down to the work directory exists in there: no data dir, no canary.
    assert seen["tmp_path"] == "work\n"
    assert seen["workdir"] == "made-here\n"


def test_the_grub_thread_of_a_build_runs_its_tools_in_the_build_s_sandbox(
    store: LocalStore,
    settings: Settings,
    plan: Plan,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def fetch_grub_dirs(release: object, store: LocalStore, workdir: Path) -> Path:
        seen.append(run_tool(["id", "-u"]).decode().strip())
        raise RuntimeError("enough: the GRUB thread ran")

    monkeypatch.setattr(build_module, "fetch_grub_dirs", fetch_grub_dirs)
    schematic = parse_schematic(b"customization:\n  extraKernelArgs: [quiet]\n")
    iso = make_plan(
        store,
        schematic,
        schematic_id(schematic),
        "v1.0.0",
        parse_profile("metal-amd64.iso"),
        settings,
    )
    with pytest.raises(RuntimeError, match="the GRUB thread ran"):
        ensure_built(store, iso, tmp_path / "work")
    assert seen == ["65534"]


def test_the_tool_timeout_setting_stops_a_build_s_tool(
    store: LocalStore, plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hangs(*args: object) -> Path:
        run_tool(["sleep", "120"])
        raise AssertionError("sleep 120 was not stopped")

    monkeypatch.setattr(builds_module, "build_asset", hangs)
    with pytest.raises(ToolError, match="timed out"):
        ensure_built(store, plan, tmp_path / "work", timeout=Settings(tool_timeout=1).tool_timeout)


def test_extension_layers_are_built_two_at_a_time_in_the_build_s_sandbox(
    store: LocalStore, plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layers overlap (both cores), each layer thread runs its tools in the build's sandbox,
    the result keeps schematic order, and the first failure in schematic order is the one
    raised, naming its extension, with no layer started after it."""
    names = [f"ext{n}" for n in range(6)]
    extensions = tuple(ExtensionInput(name, "1.0", f"{n:064x}") for n, name in enumerate(names))
    started: list[str] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def fake_layer(store: LocalStore, ext: ExtensionInput, workdir: Path, epoch: int) -> str:
        with lock:
            started.append(ext.name)
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            uid = run_tool(["id", "-u"]).decode().strip()
            time.sleep(0.2)
            if ext.name in ("ext3", "ext4"):
                raise ToolError(["mksquashfs"], 1, f"{ext.name} is broken")
            return f"{ext.name}:{uid}"
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(build_module, "_extension_layer", fake_layer)
    work = tmp_path / "work"
    work.mkdir()
    good = dataclasses.replace(plan, extensions=extensions[:3])
    with sandboxed(work):
        layers = build_module._extension_layers(good, store, work, 0, lambda *_: None)
    assert [str(layer) for layer in layers] == ["ext0:65534", "ext1:65534", "ext2:65534"]
    assert most[0] == build_module.LAYER_WORKERS == 2

    started.clear()
    bad = dataclasses.replace(plan, extensions=extensions)
    with sandboxed(work), pytest.raises(build_module.StepFailed, match=r"extension ext3 1\.0"):
        build_module._extension_layers(bad, store, work, 0, lambda *_: None)
    assert "ext5" not in started
