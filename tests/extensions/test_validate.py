"""Every hostile extension is refused by the library, naming the entry, writing nothing."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from extensions.errors import ExtensionError
from extensions.package import pack_extension
from extensions.validate import is_allowed_path, leads_to_allowed_path, symlink_escapes
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

EPOCH = 1700000000


def pack(tmp_path: Path, data: bytes) -> Path:
    source = write(tmp_path / "source", data)
    dest = tmp_path / "out.tar"
    pack_extension(source, dest, epoch=EPOCH)
    return dest


def refused(tmp_path: Path, members: list[Member], *fragments: str) -> str:
    with pytest.raises(ExtensionError) as info:
        pack(tmp_path, tar_bytes(members))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "out.tar").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["source"]  # no staging left behind
    return message


def test_valid_extension_packs(tmp_path: Path) -> None:
    dest = pack(tmp_path, tar_bytes(hello_members()))
    with tarfile.open(dest) as tar:
        assert "rootfs/usr/local/bin/hello" in tar.getnames()


@pytest.mark.parametrize(
    ("member", "fragments"),
    [
        (file("rootfs/usr/local/../../etc/passwd", b"x"), ('".." components are not allowed',)),
        (file("../escape", b"x"), ("../escape", '".."')),
        (file("/etc/passwd", b"x"), ("/etc/passwd", "absolute member names are not allowed")),
        (file("rootfs/boot/vmlinuz", b"x"), ("rootfs/boot/vmlinuz", "outside the allowed paths")),
        (file("rootfs/usr/lib64/a.so", b"x"), ("rootfs/usr/lib64/a.so", "outside the allowed")),
        (file("rootfs/usr/localevil/x", b"x"), ("rootfs/usr/localevil/x", "outside the allowed")),
        (file("rootfs/etc/modules-load.d/x.conf", b"x"), ("rootfs/etc/modules-load.d/x.conf",)),
        (directory("rootfs/boot"), ("rootfs/boot", "directory outside the allowed paths")),
        (
            file("rootfs/usr/local/bin/ww", b"x", 0o666),
            ("rootfs/usr/local/bin/ww", "world-writable"),
        ),
        (directory("rootfs/usr/local/tmp", 0o777), ("rootfs/usr/local/tmp", "world-writable")),
        (file("rootfs/usr/local/bin/su", b"x", 0o4755), ("rootfs/usr/local/bin/su", "setuid")),
        (file("rootfs/usr/local/bin/sg", b"x", 0o2755), ("rootfs/usr/local/bin/sg", "setgid")),
        (
            Member("rootfs/usr/local/null", kind=tarfile.CHRTYPE),
            ("rootfs/usr/local/null", "device nodes are not allowed"),
        ),
        (
            Member("rootfs/usr/local/sda", kind=tarfile.BLKTYPE),
            ("rootfs/usr/local/sda", "device nodes are not allowed"),
        ),
        (
            Member("rootfs/usr/local/pipe", kind=tarfile.FIFOTYPE),
            ("rootfs/usr/local/pipe", "FIFOs are not allowed"),
        ),
        (
            symlink("rootfs/usr/local/bin/out", "../../../../etc/shadow"),
            ("rootfs/usr/local/bin/out", "resolves outside rootfs/"),
        ),
        (
            symlink("rootfs/usr/local/bin/abs", "/../../etc"),
            ("rootfs/usr/local/bin/abs", "resolves outside rootfs/"),
        ),
        (
            hardlink("rootfs/usr/local/bin/hl", "/etc/passwd"),
            ("rootfs/usr/local/bin/hl", "hard link to '/etc/passwd'"),
        ),
        (
            hardlink("rootfs/usr/local/bin/hl", "rootfs/usr/local/bin/missing"),
            ("rootfs/usr/local/bin/hl", "hard link", "not a regular file earlier"),
        ),
        (
            hardlink("rootfs/usr/local/bin/hl", "../../etc/passwd"),
            ("rootfs/usr/local/bin/hl", "hard link to '../../etc/passwd'"),
        ),
        (file("extra.txt", b"x"), ("unexpected file extra.txt",)),
        (file("rootfs/usr/local/bin/hello", b"again"), ("rootfs/usr/local/bin/hello", "duplicate")),
        (file("rootfs/usr/local/bad\nname", b"x"), ("control characters",)),
        (file("rootfs/usr/local/" + "x" * 300, b"x"), ("name too long",)),
    ],
)
def test_hostile_member(tmp_path: Path, member: Member, fragments: tuple[str, ...]) -> None:
    refused(tmp_path, hello_members([member]), *fragments)


def test_member_below_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    members = hello_members(
        [symlink("rootfs/usr/local/lib", "/etc"), file("rootfs/usr/local/lib/passwd", b"x")]
    )
    refused(tmp_path, members, "rootfs/usr/local/lib/passwd", "parent rootfs/usr/local/lib")


def test_missing_manifest(tmp_path: Path) -> None:
    refused(tmp_path, hello_members()[1:], "missing manifest.yaml")


def test_missing_rootfs(tmp_path: Path) -> None:
    refused(tmp_path, hello_members()[:1], "missing rootfs/")


def test_unparsable_manifest(tmp_path: Path) -> None:
    refused(tmp_path, hello_members(body=b"version: [\n"), "manifest.yaml", "invalid YAML")


def test_wrong_manifest_version(tmp_path: Path) -> None:
    body = b"version: v1alpha2\nmetadata: {name: a, version: '1'}\n"
    refused(tmp_path, hello_members(body=body), 'unsupported "v1alpha2"')


def test_malformed_range(tmp_path: Path) -> None:
    body = (
        b"version: v1alpha1\nmetadata: {name: a, version: '1', "
        b"compatibility: {talos: {version: '>> 1'}}}\n"
    )
    refused(tmp_path, hello_members(body=body), "invalid compatibility range")


def test_manifest_must_be_a_file(tmp_path: Path) -> None:
    members = [directory("manifest.yaml"), *hello_members()[1:]]
    refused(tmp_path, members, "manifest.yaml is not a regular file")


def test_hard_link_to_earlier_member_becomes_a_copy(tmp_path: Path) -> None:
    members = hello_members([hardlink("rootfs/usr/local/bin/hi", "rootfs/usr/local/bin/hello")])
    dest = pack(tmp_path, tar_bytes(members))
    with tarfile.open(dest) as tar:
        hi = tar.getmember("rootfs/usr/local/bin/hi")
        assert hi.isreg()
        assert tar.extractfile(hi).read() == b"#!/bin/sh\necho hello\n"  # type: ignore[union-attr]


def test_symlinks_inside_rootfs_are_kept(tmp_path: Path) -> None:
    members = hello_members(
        [
            symlink("rootfs/usr/local/bin/rel", "hello"),
            symlink("rootfs/usr/local/bin/abs", "/usr/local/bin/hello"),
            symlink("rootfs/usr/local/bin/up", "../../../usr/lib/firmware"),
        ]
    )
    with tarfile.open(pack(tmp_path, tar_bytes(members))) as tar:
        assert tar.getmember("rootfs/usr/local/bin/abs").linkname == "/usr/local/bin/hello"
        assert tar.getmember("rootfs/usr/local/bin/up").issym()


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/usr/local", True),
        ("/usr/local/bin/x", True),
        ("/usr/localevil", False),
        ("/usr/lib/firmware/x.bin", True),
        ("/usr/lib/firmwarex", False),
        ("/usr/lib/modules/6.1.0/extras/a.ko", True),
        ("/usr/lib/modules-load.d/a.conf", True),
        ("/etc/ld.so.conf", True),
        ("/etc/ld.so.conf.d/a.conf", True),
        ("/etc/ld.so.confx", False),
        ("/etc/passwd", False),
        ("/usr/bin/nvme", True),
        ("/usr/bin/nvme2", False),
        ("/lib/firmware/x", False),  # pre-usr-merge path
    ],
)
def test_allowed_paths_use_component_boundaries(path: str, allowed: bool) -> None:
    assert is_allowed_path(path) is allowed


def test_directories_on_the_way_to_allowed_paths() -> None:
    assert leads_to_allowed_path("/usr/lib")
    assert leads_to_allowed_path("/etc")
    assert not leads_to_allowed_path("/boot")
    assert not leads_to_allowed_path("/usr/lib64")


@pytest.mark.parametrize(
    ("link", "target", "escapes"),
    [
        ("/usr/local/bin/a", "b", False),
        ("/usr/local/bin/a", "../../../x", False),
        ("/usr/local/bin/a", "../../../../x", True),
        ("/usr/local/bin/a", "/usr/../..", True),
        ("/usr/local/bin/a", "/usr/lib/./x/..", False),
    ],
)
def test_symlink_escape(link: str, target: str, escapes: bool) -> None:
    assert symlink_escapes(link, target) is escapes
