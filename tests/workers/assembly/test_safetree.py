"""Link-safe merges: the layer rule, and random multi-layer trees full of links against a
canary tree outside the work directory (merge primitive; extension tars made into layers by
tar2sqfs and into firmware members and microcode from their trees, checked against the
unpacked path; firmware merge, module-tree merge, sysext)."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from extensions.errors import ExtensionError
from extensions.package import extract_extension, materialise, read_extension
from tests.extensions.builders import MANIFEST
from tests.initramfs import read_members, unpack
from tests.workers.assembly.old_firmware_path import firmware_listing as firmware_listing_of
from tests.workers.assembly.old_firmware_path import firmware_trees
from tests.workers.assembly.test_tree_layer import _contents
from tests.workers.assembly.test_tree_layer import _listing as image_listing
from tests.workers.pipeline.test_link_safety import snapshot
from workers.assembly.initramfs import (
    MICROCODE_ROOT,
    MODULES_ROOT,
    make_modules_layer,
    split_extension_extras,
)
from workers.assembly.initramfs_members import (
    listings_agree,
    make_merged_firmware_member,
    make_microcode_cpio,
)
from workers.assembly.safetree import is_real_dir, kind_of, merge_tree, move_tree
from workers.assembly.squashfs import extract_squashfs, make_squashfs
from workers.assembly.sysext import make_sysext, sysext_name
from workers.assembly.tree_firmware import (
    firmware_entries,
    firmware_listing,
    make_tree_firmware_member,
    write_microcode,
)
from workers.assembly.tree_layer import firmware_paths, is_tree_dir, make_tree_layer

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
    "usr/lib/firmware/intel-ucode/06-01",
    "usr/lib/firmware/amd-ucode/microcode_amd.bin",
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


@dataclasses.dataclass(frozen=True)
class _Built:
    """One extension's layer as the build's layer stage leaves it."""

    tar: Path
    sqsh: Path
    microcode: Path | None  # a directory with kernel/x86/microcode/<vendor>.bin
    has_modules: bool
    member: Path | None  # its firmware member
    firmware: dict[str, bool] | None  # its firmware listing


@pytest.mark.integration
@settings(max_examples=40, deadline=None, suppress_health_check=TMP_FIXTURE)
@given(data=st.data())
def test_random_layers_through_the_real_merges_leave_the_canary_alone(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Each layer archived as an extension tar (links as links) and built the way
    `build_asset` builds it: its layer by tar2sqfs and its firmware member and microcode
    straight from the tar's tree; then the module-tree merge (depmod), the sysext and the
    initramfs' firmware members. Every layer holds what mksquashfs made of the unpacked
    extension before; the per-extension firmware members, when the build uses them, unpack
    to the merged member's tree. A tar the extension rules refuse (a link climbing out of
    `rootfs/`) is refused, and left out. Tools run unsandboxed here: the canary is within
    their reach, so nothing but the code keeps them off it."""
    tmp = tmp_path_factory.mktemp("real")
    canary = make_canary(tmp)
    before = snapshot(canary)
    layers = data.draw(layers_strategy(canary))
    work = _fresh(tmp / "work")
    built: list[_Built] = []
    for i, layer in enumerate(layers):
        tar = _archive(write_layer(work / f"src-{i}" / "rootfs", layer), work / f"ext-{i}.tar")
        workdir = _fresh(work / f"ext-{i}")
        try:
            built.append(_build_layer(tar, workdir))
        except ExtensionError:
            # Unpacking refuses it alike (the same rules); a schematic of the others is built.
            with pytest.raises(ExtensionError):
                extract_extension(tar, workdir / "unpacked")
            event("a layer refused")
            assert snapshot(canary) == before
            continue
        _check_against_the_unpacked_path(built[-1], workdir)
    module_trees = []
    for i, ext in enumerate(built):
        # As the build does: extract the module directory of the layer's image.
        if ext.has_modules:
            root = extract_squashfs(ext.sqsh, work / f"mods-{i}", f"{MODULES_ROOT}/{KVER}")
            if is_real_dir(root, MODULES_ROOT / KVER):
                event("extension modules")
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
    images = [
        (layer.sqsh, _unpacked_firmware(layer, work / "sysext-firmware" / str(n)))
        for n, layer in enumerate(built)
    ]
    make_sysext(
        work / "sysext.sqsh",
        workdir=_fresh(work / "sysext"),
        layers=[*images, (modules, None)],
        name=sysext_name("0" * 64),
        arch="amd64",
        epoch=EPOCH,
    )
    # The initramfs' microcode and firmware members, as `build_asset._build_members` makes
    # them: one member per extension with firmware when the listings agree, else one merged
    # member of the unpacked firmware; both unpack, the kernel's way, to the same tree.
    extras = [layer.microcode for layer in built if layer.microcode is not None]
    if extras:
        event("microcode")
    make_microcode_cpio(extras, work / "microcode", epoch=EPOCH)
    with_firmware = [layer for layer in built if layer.firmware is not None]
    unpacked = [
        _unpacked_firmware(layer, work / f"unpacked-{n}") for n, layer in enumerate(with_firmware)
    ]
    merged = make_merged_firmware_member(
        [tree for tree in unpacked if tree is not None], work / "merged", epoch=EPOCH
    )
    if with_firmware and listings_agree([layer.firmware for layer in with_firmware]):
        event("firmware members per extension")
        each = b"".join(layer.member.read_bytes() for layer in with_firmware if layer.member)
        assert unpack(read_members(each)) == unpack(read_members(merged.read_bytes()))
    elif with_firmware:
        event("firmware merged into one member")
    assert snapshot(canary) == before


def _archive(rootfs: Path, dest: Path) -> Path:
    """`rootfs` and a manifest as an extension tar: links archived as the links they are,
    owners 0:0, directories 0755 and files 0644 (whatever the umask)."""

    def canonical(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if info.isdir() else 0o644 if info.isfile() else info.mode
        return info

    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        manifest = tarfile.TarInfo("manifest.yaml")
        manifest.size = len(MANIFEST)
        tar.addfile(manifest, io.BytesIO(MANIFEST))
        tar.add(rootfs, arcname="rootfs", filter=canonical)  # links are never dereferenced
    return dest


def _build_layer(tar: Path, workdir: Path) -> _Built:
    """The layer stage of `build_asset._extension_layer`, without the cache."""
    microcode = workdir / "microcode"
    member = None
    with read_extension(tar, workdir) as (_manifest, tree):
        has_modules = is_tree_dir(tree, f"rootfs/{MODULES_ROOT}")
        sqsh = make_tree_layer(tree, workdir / "layer.sqsh", epoch=EPOCH)
        has_microcode = write_microcode(tree, microcode)
        entries = firmware_entries(tree)
        if entries is not None:
            member = make_tree_firmware_member(entries, workdir / "firmware.zst", epoch=EPOCH)
    firmware = None if entries is None else firmware_listing(entries)
    return _Built(tar, sqsh, microcode if has_microcode else None, has_modules, member, firmware)


def _unpacked_firmware(layer: _Built, workdir: Path) -> Path | None:
    """The extras directory with the extension's firmware, unpacked from its tar as
    `build_asset._unpacked_firmware` does (for the merged member and the sysext)."""
    if layer.firmware is None:
        return None
    workdir.mkdir(parents=True)
    with read_extension(layer.tar, workdir) as (_manifest, tree):
        (workdir / "extension").mkdir()
        materialise(tree, workdir / "extension", firmware_paths(tree))
    split_extension_extras(workdir / "extension" / "rootfs", workdir / "extras")
    return workdir / "extras"


def _check_against_the_unpacked_path(layer: _Built, workdir: Path) -> None:
    """The layer, microcode and firmware listing are what the build made before: the
    extension unpacked, its firmware and microcode moved out, mksquashfs of the rest."""
    unpacked = workdir / "unpacked"
    extract_extension(layer.tar, unpacked)
    extras = workdir / "extras"
    split_extension_extras(unpacked / "rootfs", extras)
    old = make_squashfs(unpacked / "rootfs", workdir / "old.sqsh", epoch=EPOCH)
    assert image_listing(layer.sqsh) == image_listing(old)
    new_files = _contents(extract_squashfs(layer.sqsh, workdir / "new-tree"))
    assert new_files == _contents(extract_squashfs(old, workdir / "old-tree"))
    assert layer.firmware == (firmware_listing_of(extras) if firmware_trees([extras]) else None)
    old_microcode = _contents(extras / MICROCODE_ROOT) if (extras / MICROCODE_ROOT).is_dir() else {}
    new_microcode = {} if layer.microcode is None else _contents(layer.microcode / MICROCODE_ROOT)
    assert new_microcode == old_microcode


def _empty_modules_tar(dest: Path) -> None:
    """A modules.tar with the kernel data files depmod needs, empty."""
    src = dest.parent / "modules-src"
    for name in ("modules.builtin", "modules.builtin.modinfo"):
        path = src / MODULES_ROOT / KVER / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    with tarfile.open(dest, "w") as tar:
        tar.add(src / "usr", arcname="usr")
