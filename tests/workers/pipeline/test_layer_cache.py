"""The layer cache: entries committed last and verified on use, and what a build reuses."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from extensions.tree import Entry, Tree
from schematics import parse_schematic, schematic_id
from tests.extensions.builders import file, hello_members, manifest, tar_bytes, write
from tests.services import S3Server
from tests.workers.releases.fakes import save_fake_release
from workers.assembly import run
from workers.assembly.run import sandboxed
from workers.assembly.sandbox_session import SessionPerThread
from workers.assembly.tree_firmware import make_tree_firmware_member
from workers.assembly.tree_layer import make_tree_layer
from workers.catalog import add_extension
from workers.pipeline import build_asset as build_module
from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.planning.plans import make_plan
from workers.planning.profiles import parse_profile
from workers.settings import Settings
from workers.store import LocalStore, Store
from workers.store.s3 import S3Store

EPOCH = 1700000000


def _files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a").write_bytes(b"layer bytes")
    (tmp_path / "b").write_bytes(b"more")
    return {"layer.sqsh": tmp_path / "a", "extras.tar": tmp_path / "b"}


def test_round_trip(store: LocalStore, tmp_path: Path) -> None:
    prefix = cache_key("extension", {"digest": "d", "recipe": 1})
    assert prefix.startswith("layers/extension/")
    assert cache_key("extension", {"recipe": 1, "digest": "d"}) == prefix
    assert load_entry(store, prefix, tmp_path / "missing") is None
    save_entry(store, prefix, _files(tmp_path), {"has_modules": True})
    entry = load_entry(store, prefix, tmp_path / "got")
    assert entry is not None
    assert entry.info == {"has_modules": True}
    assert entry.files["layer.sqsh"].read_bytes() == b"layer bytes"


def test_damaged_or_incomplete_entries_are_misses(store: LocalStore, tmp_path: Path) -> None:
    prefix = cache_key("modules", {"x": 1})
    save_entry(store, prefix, _files(tmp_path), {})
    store.put_bytes(f"{prefix}/layer.sqsh", b"layer bytez")
    assert load_entry(store, prefix, tmp_path / "one") is None
    save_entry(store, prefix, _files(tmp_path), {})
    store.delete(f"{prefix}/extras.tar")
    assert load_entry(store, prefix, tmp_path / "two") is None


def test_the_entry_document_is_written_last(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = cache_key("firmware", {"x": 2})
    real_put_file = store.put_file
    calls = []

    def failing_second(key: str, src: Path, content_type: str = "") -> None:
        calls.append(key)
        if len(calls) == 2:
            raise OSError("disk full")
        real_put_file(key, src)

    monkeypatch.setattr(store, "put_file", failing_second)
    with pytest.raises(OSError, match="disk full"):
        save_entry(store, prefix, _files(tmp_path), {})
    assert not store.exists(f"{prefix}/entry.json")


def _extension(store: Store, tmp_path: Path, name: str, firmware: bytes = b"") -> None:
    members = hello_members(
        [file("rootfs/usr/lib/firmware/blob.bin", firmware)] if firmware else []
    )
    members[0] = file("manifest.yaml", manifest(name, "1.0.0"))
    add_extension(store, write(tmp_path / f"{name}.tar", tar_bytes(members)), "factory", EPOCH)


def _initramfs(store: Store, settings: Settings, names: str, work: Path) -> bytes:
    schematic = parse_schematic(
        f"customization:\n  systemExtensions:\n    officialExtensions: [{names}]\n".encode()
    )
    plan = make_plan(
        store,
        schematic,
        schematic_id(schematic),
        "v1.0.0",
        parse_profile("initramfs-amd64.xz"),
        settings,
    )
    work.mkdir()
    return build_module.build_asset(plan, store, work).read_bytes()


@pytest.mark.integration
def test_a_schematic_differing_by_one_extension_rebuilds_only_that_layer(
    store: LocalStore, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    for name in ("hello", "world", "third"):
        _extension(store, tmp_path, name)
    built: list[str] = []
    real = make_tree_layer

    def counting(tree: Tree, dest: Path, *, epoch: int) -> Path:
        text = tree.entries["manifest.yaml"].read_bytes().decode()
        built.append(text.split("name: ")[1].split()[0])
        return real(tree, dest, epoch=epoch)

    monkeypatch.setattr("workers.pipeline.build_asset.make_tree_layer", counting)

    def initramfs(names: str, work: str) -> bytes:
        return _initramfs(store, settings, names, tmp_path / work)

    first = initramfs("factory/hello, factory/world", "one")
    # Layers are built two at a time: which ones were built matters, not in which order.
    assert sorted(built) == ["hello", "schematic", "world"]
    built.clear()
    second = initramfs("factory/hello, factory/third", "two")
    assert sorted(built) == ["schematic", "third"]
    assert first != second
    built.clear()
    assert initramfs("factory/hello, factory/world", "again") == first
    assert built == []  # every layer came from the cache


@pytest.mark.integration
def test_the_layers_of_a_build_share_a_sandbox_per_thread_and_keep_their_bytes(
    store: LocalStore, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five layers: their tar2sqfs runs go through at most LAYER_WORKERS sandboxes (not a
    bwrap start each), and the initramfs is byte for byte the one built with a bwrap per
    tool run."""
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    names = ["a1", "a2", "a3", "a4"]
    for name in names:
        _extension(store, tmp_path, name)
    schematic = parse_schematic(
        "customization:\n  systemExtensions:\n    officialExtensions: "
        f"[{', '.join('factory/' + n for n in names)}]\n".encode()
    )
    plan = make_plan(
        store, schematic, schematic_id(schematic), "v1.0.0", parse_profile("initramfs-amd64.xz"),
        settings,
    )  # fmt: skip
    plain_runs: list[list[str]] = []
    real_run = subprocess.run

    def noting_run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        plain_runs.append(argv)
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", noting_run)  # what run_tool starts without a session
    started: list[SessionPerThread] = []
    real_sessions = run.tool_sessions

    @contextlib.contextmanager
    def noting_sessions() -> Iterator[SessionPerThread | None]:
        with real_sessions() as sessions:
            assert sessions is not None
            started.append(sessions)
            yield sessions

    def build(work: str) -> bytes:
        (tmp_path / work).mkdir()
        for prefix in ("layers", "builds"):
            shutil.rmtree(store.root / prefix, ignore_errors=True)
        with sandboxed(tmp_path / work):
            return build_module.build_asset(plan, store, tmp_path / work).read_bytes()

    monkeypatch.setattr("workers.pipeline.build_asset.tool_sessions", noting_sessions)
    with_sessions = build("sessions")
    assert 1 <= started[0].starts <= build_module.LAYER_WORKERS
    assert not [a for a in plain_runs if "tar2sqfs" in a and "-version" not in a]
    monkeypatch.setattr("workers.pipeline.build_asset.tool_sessions", contextlib.nullcontext)
    assert build("per-tool") == with_sessions
    assert len([a for a in plain_runs if "tar2sqfs" in a]) >= len(names) + 1


@pytest.mark.integration
def test_an_extensions_firmware_member_is_built_once_for_every_schematic(
    store: LocalStore, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_fake_release(store, "v1.0.0", tmp_path / "release")
    _extension(store, tmp_path, "firmware", firmware=b"firmware blob " * 100)
    for name in ("hello", "world"):
        _extension(store, tmp_path, name)
    built: list[Path] = []
    real = make_tree_firmware_member

    def counting(entries: list[tuple[str, Entry]], dest: Path, *, epoch: int) -> Path:
        built.append(real(entries, dest, epoch=epoch))
        return built[-1]

    monkeypatch.setattr("workers.pipeline.build_asset.make_tree_firmware_member", counting)
    first = _initramfs(store, settings, "factory/firmware, factory/hello", tmp_path / "one")
    [member] = built
    key = [k for k in store.list("layers/firmware/") if k.endswith("/entry.json")]
    assert len(key) == 1
    # Another schematic with that extension: the cached member, not a new one.
    second = _initramfs(store, settings, "factory/world, factory/firmware", tmp_path / "two")
    assert built == [member]
    assert [k for k in store.list("layers/firmware/") if k.endswith("/entry.json")] == key
    assert member.read_bytes() in first
    assert member.read_bytes() in second
    assert first != second
    # The cache lost the member (not the layer): made again from the tar, the same bytes.
    bytes_before = member.read_bytes()
    shutil.rmtree(store.root / "layers" / "firmware")
    third = _initramfs(store, settings, "factory/world, factory/firmware", tmp_path / "three")
    assert len(built) == 2
    assert built[1].read_bytes() == bytes_before
    assert third == second


@pytest.mark.integration
def test_an_s3_store_s_tars_are_downloaded_a_local_store_s_read_in_place_same_bytes(
    store: LocalStore, settings: Settings, s3_server: S3Server, tmp_path: Path
) -> None:
    s3 = S3Store.from_settings(s3_server.settings(tmp_path, f"test-{uuid.uuid4().hex[:16]}"))
    built = {}
    for name, where in (("local", store), ("s3", s3)):
        save_fake_release(where, "v1.0.0", tmp_path / f"release-{name}")
        (tmp_path / name).mkdir()
        _extension(where, tmp_path / name, "firmware", firmware=b"firmware blob " * 100)
        _extension(where, tmp_path / name, "hello")
        built[name] = _initramfs(
            where, settings, "factory/firmware, factory/hello", tmp_path / f"build-{name}"
        )
    assert built["local"] == built["s3"]
    # The local store's tars are read where the store keeps them: no copy in the build.
    assert not list((tmp_path / "build-local").rglob("extension.tar"))
    assert len(list((tmp_path / "build-s3").rglob("extension.tar"))) == 3  # with the schematic's
    for where in (store, s3):
        assert [k for k in where.list("layers/firmware/") if k.endswith("/entry.json")]
