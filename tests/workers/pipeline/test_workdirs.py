"""Work directories of dead builds are removed (at worker start, by the housekeeping); those
of live builds, in this process or another worker's, stay."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

from workers.backends import choose_backend
from workers.dispatch import celery_app as celery_side
from workers.pipeline.workdirs import build_workdir, remove_dead_workdirs, work_root
from workers.settings import Settings


def _build_then_hang(root: Path, ready: multiprocessing.synchronize.Event) -> None:
    with build_workdir(root) as workdir:
        (workdir / "half-built.iso").write_bytes(b"partial")
        (workdir / "tree").mkdir()
        (workdir / "tree" / "link").symlink_to("/")  # an extension's link: never followed
        (workdir / "tree").chmod(0o555)  # tools may leave read-only directories behind
        ready.set()
        signal.pause()


def killed_mid_build(root: Path) -> Path:
    """A build in another process, killed with SIGKILL: its directory stays behind."""
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    child = context.Process(target=_build_then_hang, args=(root, ready))
    child.start()
    assert ready.wait(60)
    before = {p for p in root.iterdir() if p.name.startswith("build-")}
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    (dead,) = before
    return dead


def test_a_killed_build_leaves_its_directory_and_the_cleanup_removes_it(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    canary = tmp_path / "canary"
    canary.write_text("keep")
    dead = killed_mid_build(root)
    assert (dead / "half-built.iso").exists()
    assert remove_dead_workdirs(root) == [dead]
    assert not dead.exists()
    assert canary.read_text() == "keep"


def test_a_live_build_keeps_its_directory(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    dead = killed_mid_build(root)
    (root / "spool-upload").mkdir()  # not a build's: left alone
    with build_workdir(root) as live:
        (live / "in-progress").write_bytes(b"x")
        assert remove_dead_workdirs(root) == [dead]
        assert (live / "in-progress").exists()
    assert not live.exists()  # a build removes its own directory when it ends
    assert sorted(p.name for p in root.iterdir()) == ["spool-upload"]


def test_the_housekeeping_removes_dead_work_directories(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    dead = killed_mid_build(work_root(settings))
    celery_side.keep_house(celery_side.make_celery(settings, choose_backend(settings)))
    assert not dead.exists()
