"""Extension layers made from the tar by tar2sqfs: the same tree mksquashfs made of the
unpacked extension, the same bytes every time, links stored as links, and a failing tool
or writer never leaves the stream hanging."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from extensions.errors import ExtensionError
from extensions.package import extract_extension, read_extension
from tests.extensions.builders import (
    Member,
    directory,
    file,
    hardlink,
    hello_members,
    symlink,
    tar_bytes,
    write,
)
from tests.initramfs import read_members, unpack
from tests.workers.assembly.old_firmware_path import firmware_listing, make_firmware_member
from workers.assembly.fifo import fed_fifo
from workers.assembly.initramfs import split_extension_extras
from workers.assembly.initramfs_members import listings_agree
from workers.assembly.run import ToolError, run_tool, sandboxed, tool_sessions
from workers.assembly.sandbox import OutsideSandbox
from workers.assembly.squashfs import extract_squashfs, make_squashfs
from workers.assembly.tree_firmware import (
    firmware_entries,
    make_tree_firmware_member,
    write_microcode,
)
from workers.assembly.tree_firmware import firmware_listing as tree_listing
from workers.assembly.tree_layer import firmware_paths, is_tree_dir, make_tree_layer
from workers.catalog.extensions import CorruptObject, fetch_verified
from workers.hashing import sha256_file
from workers.store.local import LocalStore

pytestmark = pytest.mark.integration
EPOCH = 1700000000
RANDOM = bytes((i * 7919 + 13) % 251 for i in range(400_000))


def _hostile_tar(tmp_path: Path) -> Path:
    """Not canonical: owners 1000, odd modes, implied parents, a hard link, links pointing
    out of the tree (absolute) and up, a long name, firmware with microcode."""
    members = hello_members(
        [
            file("rootfs/usr/local/lib/x/data.bin", RANDOM + b"\0" * 300_000, 0o600),
            file("rootfs/usr/local/lib/x/run", b"#!/bin/sh\n", 0o700),
            hardlink("rootfs/usr/local/lib/x/copy", "rootfs/usr/local/lib/x/run"),
            symlink("rootfs/usr/local/lib/x/passwd", "/etc/passwd"),
            symlink("rootfs/usr/local/lib/x/up", "../../share"),
            file("rootfs/usr/local/lib/x/" + "n" * 150, b"long"),
            directory("rootfs/usr/lib/firmware", 0o700),
            file("rootfs/usr/lib/firmware/vendor/blob.bin", b"\1" * 5000),
            file("rootfs/usr/lib/firmware/intel-ucode/06-01-01", b"ucode"),
        ]
    )
    return write(tmp_path / "ext.tar", tar_bytes(members))


def _listing(image: Path) -> str:
    return run_tool(["unsquashfs", "-lln", "-UTC", image]).decode()


def _contents(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def _tree_layer(tar: Path, dest: Path, jobs: int | None = None) -> Path:
    with read_extension(tar, dest.parent) as (_manifest, tree):
        return make_tree_layer(tree, dest, epoch=EPOCH, jobs=jobs)


def test_the_layer_holds_what_mksquashfs_made_of_the_unpacked_extension(tmp_path: Path) -> None:
    tar = _hostile_tar(tmp_path)
    with sandboxed(tmp_path):
        new = _tree_layer(tar, tmp_path / "new.sqsh")
        extract_extension(tar, tmp_path / "unpacked")
        split_extension_extras(tmp_path / "unpacked" / "rootfs", tmp_path / "extras")
        old = make_squashfs(tmp_path / "unpacked" / "rootfs", tmp_path / "old.sqsh", epoch=EPOCH)
        assert _listing(new) == _listing(old)
        new_files = _contents(extract_squashfs(new, tmp_path / "new-tree"))
        old_files = _contents(extract_squashfs(old, tmp_path / "old-tree"))
    assert new_files == old_files
    # Links are data: stored as they are, never followed on the host.
    assert new_files["usr/local/lib/x/passwd"] == "-> /etc/passwd"
    assert not any(path.startswith("usr/lib/firmware") for path in new_files)
    assert "usr/local/lib/x/" + "n" * 150 in new_files


def test_the_layer_s_bytes_are_the_same_every_time_with_or_without_a_session_or_cores(
    tmp_path: Path,
) -> None:
    tar = _hostile_tar(tmp_path)
    with sandboxed(tmp_path):
        plain = _tree_layer(tar, tmp_path / "a.sqsh")
        with tool_sessions() as sessions:
            assert sessions is not None
            in_session = _tree_layer(tar, tmp_path / "b.sqsh")
            again = _tree_layer(tar, tmp_path / "c.sqsh", jobs=1)
            more_jobs = _tree_layer(tar, tmp_path / "d.sqsh", jobs=3)
    digests = {sha256_file(image) for image in (plain, in_session, again, more_jobs)}
    assert len(digests) == 1
    assert not list(tmp_path.glob("*.tar-pipe"))


def test_a_firmware_link_stays_in_the_layer_and_nothing_is_unpacked_for_it(
    tmp_path: Path,
) -> None:
    tar = write(
        tmp_path / "ext.tar",
        tar_bytes(hello_members([symlink("rootfs/usr/lib/firmware", "/lib/firmware")])),
    )
    with read_extension(tar, tmp_path) as (_manifest, tree):
        assert firmware_paths(tree) == set()
        assert not is_tree_dir(tree, "rootfs/usr/lib/firmware")
        assert is_tree_dir(tree, "rootfs/usr/local")
        with sandboxed(tmp_path):
            image = make_tree_layer(tree, tmp_path / "layer.sqsh", epoch=EPOCH)
            root = extract_squashfs(image, tmp_path / "tree")
    assert os.readlink(root / "usr/lib/firmware") == "/lib/firmware"


def test_a_tar_that_is_not_a_valid_extension_is_refused_before_any_tool_runs(
    tmp_path: Path,
) -> None:
    tar = write(
        tmp_path / "ext.tar",
        tar_bytes(hello_members([symlink("rootfs/usr/x", "../../../etc/passwd")])),
    )
    with pytest.raises(ExtensionError), read_extension(tar, tmp_path):
        pass


def test_a_tool_that_fails_does_not_leave_the_writer_blocked(tmp_path: Path) -> None:
    def write_much(out: BinaryIO) -> None:
        out.write(b"x" * (8 << 20))

    pipe = tmp_path / "pipe"
    with sandboxed(tmp_path), pytest.raises(ToolError), tool_sessions(), fed_fifo(pipe, write_much):
        run_tool(["false"], stdin=pipe)
    assert not (tmp_path / "pipe").exists()


def test_a_writer_that_fails_fails_the_step(tmp_path: Path) -> None:
    def broken(out: BinaryIO) -> None:
        out.write(b"partial")
        raise ValueError("the source changed size")

    pipe = tmp_path / "pipe"
    with (
        pytest.raises(ValueError, match="changed size"),
        sandboxed(tmp_path),
        fed_fifo(pipe, broken),
    ):
        assert run_tool(["cat"], stdin=pipe) == b"partial"


def test_a_local_store_s_tar_is_read_in_place_and_checked(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    tar = _hostile_tar(tmp_path)
    digest = sha256_file(tar)
    store.put_file("extensions/x.tar", tar)
    local = fetch_verified(store, "extensions/x.tar", digest, tmp_path / "copy", in_place=True)
    assert local == store.local_path("extensions/x.tar")
    assert not (tmp_path / "copy").exists()
    with pytest.raises(CorruptObject):
        fetch_verified(store, "extensions/x.tar", "0" * 64, tmp_path / "copy", in_place=True)


def test_the_firmware_member_and_microcode_from_the_tree_are_what_unpacking_gave(
    tmp_path: Path,
) -> None:
    """Against the unpacked path (`split_extension_extras` + GNU cpio): the member unpacks,
    the kernel's way, to the same entries; the listing and the microcode are the same."""
    members = hello_members(
        [
            directory("rootfs/usr/lib/firmware", 0o700),
            file("rootfs/usr/lib/firmware/vendor/blob.bin", RANDOM, 0o600),
            file("rootfs/usr/lib/firmware/vendor/tool", b"#!/bin/sh\n", 0o700),
            hardlink("rootfs/usr/lib/firmware/vendor/again", "rootfs/usr/lib/firmware/vendor/tool"),
            symlink("rootfs/usr/lib/firmware/vendor/abs", "/etc/passwd"),
            file("rootfs/usr/lib/firmware/intel-ucode/06-02", b"intel two"),
            file("rootfs/usr/lib/firmware/intel-ucode/06-01", b"intel one"),
            file("rootfs/usr/lib/firmware/amd-ucode/microcode_amd_fam17h.bin", b"amd"),
            file("rootfs/usr/lib/firmware/amd-ucode/README", b"not microcode"),
        ]
    )
    tar = write(tmp_path / "ext.tar", tar_bytes(members))
    extract_extension(tar, tmp_path / "unpacked")
    extras = tmp_path / "extras"
    split_extension_extras(tmp_path / "unpacked" / "rootfs", extras)
    listing = firmware_listing(extras)
    with sandboxed(tmp_path):
        with read_extension(tar, tmp_path) as (_manifest, tree):
            entries = firmware_entries(tree)
            assert entries is not None
            new = make_tree_firmware_member(entries, tmp_path / "new.zst", epoch=EPOCH)
            again = make_tree_firmware_member(entries, tmp_path / "again.zst", epoch=EPOCH)
            assert write_microcode(tree, tmp_path / "microcode")
        old = make_firmware_member(extras, tmp_path / "old", epoch=EPOCH)
    assert tree_listing(entries) == listing
    assert new.read_bytes() == again.read_bytes()
    unpacked = unpack(read_members(new.read_bytes()))
    assert unpacked == unpack(read_members(old.read_bytes()))
    assert unpacked["usr/lib/firmware/vendor/abs"].data == b"/etc/passwd"
    assert "usr/lib/firmware/intel-ucode/06-01" not in unpacked
    assert "usr/lib/firmware/amd-ucode/README" in unpacked
    microcode = tmp_path / "microcode/kernel/x86/microcode"
    assert (microcode / "GenuineIntel.bin").read_bytes() == b"intel oneintel two"
    assert (microcode / "AuthenticAMD.bin").read_bytes() == b"amd"
    for vendor in ("GenuineIntel", "AuthenticAMD"):
        old_microcode = extras / "kernel/x86/microcode" / f"{vendor}.bin"
        assert (microcode / f"{vendor}.bin").read_bytes() == old_microcode.read_bytes()


def test_firmware_listings_that_disagree_are_told(tmp_path: Path) -> None:
    def listing(name: str, extra: list[Member]) -> dict[str, bool]:
        tar = write(tmp_path / f"{name}.tar", tar_bytes(hello_members(extra)))
        with read_extension(tar, tmp_path) as (_manifest, tree):
            entries = firmware_entries(tree)
        assert entries is not None
        return tree_listing(entries)

    as_file = listing("a", [file("rootfs/usr/lib/firmware/x", b"file")])
    as_dir = listing("b", [file("rootfs/usr/lib/firmware/x/y", b"file")])
    as_link = listing("c", [symlink("rootfs/usr/lib/firmware/x", "y")])
    assert listings_agree([as_file, as_link])
    assert not listings_agree([as_file, as_dir])
    assert not listings_agree([as_dir, None])


def test_hard_linked_firmware_is_two_files_and_its_members_agree(tmp_path: Path) -> None:
    """A hard link in the tar is a copy in the tree (the unpacked extras had two links to
    one inode, which the kernel and the layer rule could treat differently)."""
    members = [
        file("rootfs/usr/lib/firmware/a.bin", b"x"),
        hardlink("rootfs/usr/lib/firmware/b.bin", "rootfs/usr/lib/firmware/a.bin"),
    ]
    tar = write(tmp_path / "ext.tar", tar_bytes(hello_members(members)))
    with read_extension(tar, tmp_path) as (_manifest, tree):
        entries = firmware_entries(tree)
        assert entries is not None
        listing = tree_listing(entries)
        with sandboxed(tmp_path):
            member = make_tree_firmware_member(entries, tmp_path / "fw.zst", epoch=EPOCH)
    assert listing == {
        "lib": True,
        "lib/firmware": True,
        "lib/firmware/a.bin": False,
        "lib/firmware/b.bin": False,
    }
    assert listings_agree([listing])
    unpacked = unpack(read_members(member.read_bytes()))
    assert unpacked["usr/lib/firmware/b.bin"].data == b"x"
    assert unpacked["usr/lib/firmware/b.bin"].nlink == 1


def test_a_stdin_file_outside_the_sandbox_is_refused(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()
    outside = write(tmp_path / "secret", b"not for the tool")
    with sandboxed(tmp_path / "box"), pytest.raises(OutsideSandbox), tool_sessions():
        run_tool(["cat"], stdin=outside)
