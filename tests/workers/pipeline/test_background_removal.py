"""Scratch trees removed "soon": at once outside a span; within one, on other threads and all
gone when the span ends, links never followed, failures raised there (the span's own error
first)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from workers.pipeline import background_removal, workdirs
from workers.pipeline.background_removal import removals_in_background, remove_soon


def _tree(root: Path, outside: Path) -> Path:
    """A scratch tree as tools leave them: a read-only directory, a link to outside it."""
    (root / "rootfs" / "usr").mkdir(parents=True)
    (root / "rootfs" / "usr" / "file").write_bytes(b"x")
    (root / "rootfs" / "link").symlink_to(outside)
    (root / "rootfs").chmod(0o555)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "keep").write_bytes(b"not the build's")
    return target


def test_outside_a_span_removal_is_at_once(tmp_path: Path, outside: Path) -> None:
    tree = _tree(tmp_path / "tree", outside)
    remove_soon(tree)
    assert not tree.exists()
    assert (outside / "keep").read_bytes() == b"not the build's"


def test_within_a_span_removals_run_elsewhere_and_are_done_at_its_end(
    tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = workdirs.remove_tree

    def watched(path: Path) -> None:
        threads.append(threading.current_thread().name)
        real(path)

    monkeypatch.setattr(background_removal, "remove_tree", watched)
    trees = [_tree(tmp_path / f"tree-{n}", outside) for n in range(6)]
    with removals_in_background():
        for tree in trees:
            remove_soon(tree)
    assert not any(tree.exists() for tree in trees)
    assert len(threads) == len(trees)
    assert threading.current_thread().name not in threads
    assert (outside / "keep").read_bytes() == b"not the build's"
    # The span is over: removal is at once again.
    tree = _tree(tmp_path / "after", outside)
    remove_soon(tree)
    assert threads[-1] == threading.current_thread().name


def test_a_failed_removal_is_raised_when_the_span_ends(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), removals_in_background():
        remove_soon(tmp_path / "missing")


def _fail_with_a_removal_pending(missing: Path) -> None:
    with removals_in_background():
        remove_soon(missing)
        raise ValueError("the build failed")


def test_the_span_s_own_error_is_the_one_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="the build failed"):
        _fail_with_a_removal_pending(tmp_path / "missing")
    assert "removing a scratch tree failed" in caplog.text
