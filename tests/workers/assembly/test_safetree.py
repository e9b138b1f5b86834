"""Link-safe merges: the layer rule, and random multi-layer trees full of links against a
canary tree outside the work directory (merge primitive, firmware/microcode split and merge,
module-tree merge, sysext)."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.initramfs import read_members, unpack
from tests.workers.pipeline.test_link_safety import snapshot
from workers.assembly.initramfs import (
    MODULES_ROOT,
    make_modules_layer,
    split_extension_extras,
)
from workers.assembly.initramfs_members import (
    firmware_trees,
    make_firmware_member,
    make_merged_firmware_member,
    make_microcode_cpio,
    members_agree,
)
from workers.assembly.safetree import kind_of, merge_tree, move_tree
from workers.assembly.squashfs import extract_squashfs, make_squashfs
from workers.assembly.sysext import make_sysext, sysext_name

EPOCH = 1700000000
KVER = "6.1.0-test"
# Where layers put things: plain paths and the firmware, microcode and module directories.
PLACES = (
    "usr/local/x",
    "usr/local/x/y",
    "usr/lib/firmware/x",
    "usr/lib/firmware/x/y",
    "usr/lib/firmware/intel-ucode",
    "usr/lib/firmware/amd-ucode",
    f"usr/lib/modules/{KVER}/extras",
    f"usr/lib/modules/{KVER}/extras/x",
    f"usr/lib/modules/{KVER}/modules.order",
    f"usr/lib/modules/{KVER}/modules.builtin",
)
# A fresh tmp dir per example is made inside the test (tmp_path_factory is session-wide).
TMP_FIXTURE = [HealthCheck.function_scoped_fixture]
Layer = dict[str, tuple[str, str]]  # path -> ("dir", "") | ("file", text) | ("link", target)


def link_targets(canary: Path) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            str(canary),  # absolute, to a host directory
            str(canary / "secret"),  # absolute, to a host file
            str(canary / "missing"),  # dangling
            "..",
            "../..",
            "../../../../../..",
            "y",  # chain through a sibling
            "x/y",
            ".",
            "/proc/self/environ",
        ]
    )


def layers_strategy(canary: Path) -> st.SearchStrategy[list[Layer]]:
    entry = st.one_of(
        st.just(("dir", "")),
        st.tuples(st.just("file"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("link"), link_targets(canary)),
    )
    layer = st.dictionaries(st.sampled_from(PLACES), entry, max_size=6)
    return st.lists(layer, min_size=1, max_size=4)


def write_layer(root: Path, layer: Layer) -> Path:
    """Materialise `layer` below `root`: shallow paths first; a path under a non-directory
    of the same layer is dropped (one extension cannot hold both: upload refuses it)."""
    root.mkdir(parents=True)
    for rel, (kind, data) in sorted(layer.items(), key=lambda item: item[0].count("/")):
        path = root / rel
        ancestors = [root / a for a in reversed(Path(rel).parents) if str(a) != "."]
        if any(kind_of(a) not in ("dir", None) for a in ancestors):
            continue
        for ancestor in ancestors:
            if kind_of(ancestor) is None:
                ancestor.mkdir()
        if kind_of(path) is not None:
            continue  # made as a parent already
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text(data)
        else:
            path.symlink_to(data)
    return root


def expected_view(roots: list[Path]) -> dict[str, tuple[str, str]]:
    """What overlayfs would show: the upper-most entry at each path, nothing below a
    non-directory that an upper layer put above it."""
    view: dict[str, tuple[str, str]] = {}
    for root in roots:
        for rel, found in _listing(root).items():
            # os.walk lists a directory before its contents, so a layer's parents come first.
            if found[0] != "dir":
                for other in [p for p in view if p.startswith(rel + "/")]:
                    del view[other]
            view[rel] = found
    return view


def _listing(root: Path) -> dict[str, tuple[str, str]]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            kind = kind_of(path)
            assert kind is not None
            data = os.readlink(path) if kind == "link" else ""
            data = path.read_text() if kind == "file" else data
            found[str(path.relative_to(root))] = (kind, data)
    return found


def make_canary(tmp: Path) -> Path:
    canary = tmp / "canary"
    (canary / "x" / "y").mkdir(parents=True)
    (canary / "secret").write_text("secret")
    (canary / "x" / "y" / "f").write_text("host")
    (canary / "y").symlink_to("x")
    os.chmod(canary / "x", 0o700)
    return canary


def test_later_directory_replaces_link_and_file(tmp_path: Path) -> None:
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    dest = tmp_path / "work" / "dest"
    dest.mkdir(parents=True)
    (dest / "x").symlink_to(canary / "x")
    (dest / "f").write_text("earlier")
    src = tmp_path / "work" / "src"
    (src / "x" / "y").mkdir(parents=True)
    (src / "x" / "y" / "f").write_text("later")
    (src / "f" / "g").mkdir(parents=True)
    merge_tree(src, dest)
    assert snapshot(canary) == before
    assert (dest / "x" / "y" / "f").read_text() == "later"
    assert stat.S_ISDIR(os.lstat(dest / "x").st_mode)
    assert stat.S_ISDIR(os.lstat(dest / "f").st_mode)


def test_later_link_replaces_directory_tree(tmp_path: Path) -> None:
    canary = make_canary(tmp_path)
    before = snapshot(canary)
    dest = tmp_path / "dest"
    (dest / "x" / "y").mkdir(parents=True)
    (dest / "x" / "y" / "f").write_text("earlier")
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").symlink_to(canary)
    move_tree(src, dest)
    assert os.readlink(dest / "x") == str(canary)
    assert not src.exists()
    assert snapshot(canary) == before


def test_merge_refuses_a_link_as_either_root(tmp_path: Path) -> None:
    canary = make_canary(tmp_path)
    (tmp_path / "dest").symlink_to(canary)
    (tmp_path / "src").mkdir()
    with pytest.raises(NotADirectoryError):
        merge_tree(tmp_path / "src", tmp_path / "dest")
    with pytest.raises(NotADirectoryError):
        merge_tree(tmp_path / "dest", tmp_path / "src")


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_layers_merge_by_the_rule_and_leave_the_canary_alone(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    tmp = tmp_path_factory.mktemp("merge")
    canary = make_canary(tmp)
    before = snapshot(canary)
    layers = data.draw(layers_strategy(canary))
    roots = [write_layer(tmp / "work" / f"layer-{i}", layer) for i, layer in enumerate(layers)]
    expected = expected_view(roots)
    dest = _fresh(tmp / "work" / "merged")
    for root in roots:
        merge_tree(root, dest)
    assert _listing(dest) == expected
    assert snapshot(canary) == before


@pytest.mark.integration
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_layers_through_the_real_merges_leave_the_canary_alone(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Each layer as an extension rootfs: firmware and microcode split off, the module-tree
    merge (depmod), the sysext and the initramfs' firmware members, as the build runs them."""
    tmp = tmp_path_factory.mktemp("real")
    canary = make_canary(tmp)
    before = snapshot(canary)
    layers = data.draw(layers_strategy(canary))
    work = _fresh(tmp / "work")
    images: list[tuple[Path, Path | None]] = []
    extras_trees, module_trees = [], []
    for i, layer in enumerate(layers):
        rootfs = write_layer(work / f"ext-{i}" / "rootfs", layer)
        extras = _fresh(work / f"ext-{i}" / "extras")
        split_extension_extras(rootfs, extras)
        extras_trees.append(extras)
        sqsh = make_squashfs(rootfs, work / f"ext-{i}" / "layer.sqsh", epoch=EPOCH)
        images.append((sqsh, extras))
        # As the build does: extract the module directory of the layer's image.
        root = extract_squashfs(sqsh, work / f"mods-{i}", f"{MODULES_ROOT}/{KVER}")
        if kind_of(root / MODULES_ROOT / KVER) == "dir":
            module_trees.append(root / MODULES_ROOT / KVER)
    base = _fresh(work / "base")
    (base / "modules.order").write_text("")
    modules_tar = work / "modules.tar"
    _empty_modules_tar(modules_tar)
    modules = make_modules_layer(
        dest=work / "modules.sqsh",
        workdir=_fresh(work / "modules"),
        kernel_version=KVER,
        base_modules=base,
        modules_tar=modules_tar,
        closure_paths=[],
        extension_modules=module_trees,
        requested=[],
        epoch=EPOCH,
    )
    make_sysext(
        work / "sysext.sqsh",
        workdir=_fresh(work / "sysext"),
        layers=[*images, (modules, None)],
        name=sysext_name("0" * 64),
        arch="amd64",
        epoch=EPOCH,
    )
    # The initramfs' firmware: merged into one member, and (when the kernel would unpack
    # them alike) one member per extension; the same tree either way.
    make_microcode_cpio(extras_trees, work / "microcode", epoch=EPOCH)
    trees = firmware_trees(extras_trees)
    merged = make_merged_firmware_member(trees, work / "merged-firmware", epoch=EPOCH)
    if trees and members_agree(trees):
        members = [
            make_firmware_member(tree, work / f"firmware-{n}", epoch=EPOCH)
            for n, tree in enumerate(trees)
        ]
        each = b"".join(member.read_bytes() for member in members)
        assert unpack(read_members(each)) == unpack(read_members(merged.read_bytes()))
    assert snapshot(canary) == before


def _empty_modules_tar(dest: Path) -> None:
    """A modules.tar with the kernel data files depmod needs, empty."""
    src = dest.parent / "modules-src"
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        path = src / MODULES_ROOT / KVER / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    with tarfile.open(dest, "w") as tar:
        tar.add(src / "usr", arcname="usr")
