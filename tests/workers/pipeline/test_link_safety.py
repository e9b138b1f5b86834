"""Hostile links in uploaded extensions, through the real build (`ensure_built`).

Every extension here passes upload validation (absolute link targets are legal inside an
image). The canary tree lies outside the build's data directory; it must come out of the
builds exactly as it went in, no secret or environment byte may reach an asset, and layer
conflicts follow "the later layer wins, as overlayfs shows it".
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from tests.initramfs import read_members, unpack, write_tree
from tests.workers.assets import SCHEMATIC, build_assets, stock_store
from workers.assembly.initramfs import copy_from_modules_tar
from workers.assembly.squashfs import extract_squashfs
from workers.catalog.extensions import add_extension
from workers.releases.manifest import INITRAMFS, MODULES_TAR
from workers.releases.stored import Release
from workers.store import LocalStore

pytestmark = pytest.mark.integration

ASSETS = ["initramfs-amd64.xz", "extensions-amd64.sqsh"]
Snapshot = dict[str, tuple[str, int, int, bytes]]


def snapshot(root: Path) -> Snapshot:
    """Every path below `root` (links not followed): type, mode, mtime (ns), content."""
    found: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                kind, data = "link", os.readlink(path).encode()
            elif stat.S_ISDIR(st.st_mode):
                kind, data = "dir", b""
            else:
                kind, data = "file", path.read_bytes()
            found[str(path.relative_to(root))] = (kind, st.st_mode, st.st_mtime_ns, data)
    return found


def regular_file_bytes(root: Path) -> list[bytes]:
    """The contents of every regular file below `root` (links not followed)."""
    return [
        Path(d, name).read_bytes()
        for d, _, files in os.walk(root)
        for name in files
        if stat.S_ISREG(Path(d, name).lstat().st_mode)
    ]


def unpack_sysext(image: Path, dest: Path) -> Path:
    return extract_squashfs(image, dest)


def unpack_initramfs(image: Path, base: bytes, dest: Path) -> tuple[bytes, Path]:
    """(early microcode cpio bytes, what the members after the base unpack to, the kernel's
    way, with each layer beside it as `<n>.sqsh.d`)."""
    whole = image.read_bytes()
    at = whole.index(base)
    after_base = [m for m in read_members(whole) if m.offset >= at + len(base)]
    root = write_tree(unpack(after_base), dest / "segment")
    for layer in sorted(root.glob("*.sqsh")):
        extract_squashfs(layer, root / f"{layer.name}.d")
    return whole[:at], root


def write_extension(root: Path, name: str, files: dict[str, bytes], links: dict[str, str]) -> Path:
    """An extension source directory: `files` and `links` are relative to its rootfs/."""
    source = root / name
    (source / "rootfs").mkdir(parents=True)
    (source / "manifest.yaml").write_text(
        "version: v1alpha1\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  version: 1.0.0\n"
        "  author: test\n"
        "  description: hostile links\n"
        "  compatibility:\n"
        "    talos:\n"
        '      version: ">= v1.0.0"\n'
    )
    for rel, data in files.items():
        path = source / "rootfs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel, target in links.items():
        path = source / "rootfs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
    return source


def schematic_with(*names: str) -> bytes:
    listed = "".join(f"      - factory/{name}\n" for name in names)
    return SCHEMATIC.replace(b"      - factory/dummy-module\n", listed.encode())


class Attack:
    """A store with hostile extensions, a canary tree outside the data dir, its snapshot."""

    def __init__(self, source: tuple[LocalStore, Release], root: Path) -> None:
        self.store, self.settings = stock_store(source, root)
        self.release = source[1]
        self.base = source[1].fetch(source[0], INITRAMFS, root / "base.initramfs").read_bytes()
        self.root = root
        self.canary = root / "canary"
        self.secret = secrets.token_bytes(48)
        self.kver = source[1].kernel_version
        self._make_canary()
        self.before = snapshot(self.canary)

    def _make_canary(self) -> None:
        c = self.canary
        for directory in ("ucode", "local-x", "fw-x", "fw-root", "mod-x", f"mods/{self.kver}"):
            (c / directory).mkdir(parents=True)
        (c / "secret.pem").write_bytes(self.secret)
        (c / "ucode/06-01-01").write_bytes(b"host microcode " + self.secret)
        (c / "ucode/microcode_amd_fam17h.bin").write_bytes(b"host amd " + self.secret)
        for directory in ("local-x", "fw-x", "fw-root", "mod-x"):
            (c / directory / "f").write_bytes(b"host file")
            (c / directory / "f").chmod(0o600)
            (c / directory).chmod(0o700)
        (c / f"mods/{self.kver}/leak.ko").write_bytes(self.secret)
        # A real module that only the host has: depmod must not index it through a link.
        (c / "hostmods").mkdir()
        copy_from_modules_tar(
            self.release.fetch(self.store, MODULES_TAR, self.root / MODULES_TAR),
            self.kver,
            ["kernel/drivers/net/dummy.ko"],
            c / "hostmods",
        )
        for path in c.rglob("*"):
            os.utime(path, (1000000000, 1000000000), follow_symlinks=False)

    def add(self, name: str, files: dict[str, bytes], links: dict[str, str]) -> None:
        add_extension(self.store, write_extension(self.root / "src", name, files, links), "factory")

    def build(self, name: str, *extensions: str) -> dict[str, Path]:
        return build_assets(
            self.store, self.settings, ASSETS, self.root / "out" / name, schematic_with(*extensions)
        )

    def add_hostile_extensions(self) -> None:
        canary, extras = self.canary, f"usr/lib/modules/{self.kver}/extras"
        self.add(
            "leak",
            {"usr/lib/firmware/vendor/real.bin": b"firmware"},
            {
                "usr/lib/firmware/leak.pem": str(canary / "secret.pem"),
                "usr/lib/firmware/env": "/proc/self/environ",
                "usr/local/leak.pem": str(canary / "secret.pem"),
            },
        )
        # The whole module directory as a link to a host tree for the release's kernel.
        self.add("modleak", {}, {"usr/lib/modules": str(canary / "mods")})
        self.add(
            "ucode",
            {"usr/lib/firmware/intel-ucode/06-02-01": b"real intel"},
            {"usr/lib/firmware/amd-ucode": str(canary / "ucode")},
        )
        self.add("ucode2", {}, {"usr/lib/firmware/intel-ucode": str(canary / "ucode")})
        self.add("modlink", {}, {f"{extras}/hostdir": str(canary / "hostmods")})
        self.add("whole-firmware", {}, {"usr/lib/firmware": str(canary / "fw-root")})
        self.add(
            "link-a",
            {},
            {
                "usr/local/x": str(canary / "local-x"),
                "usr/lib/firmware/x": str(canary / "fw-x"),
                f"{extras}/x": str(canary / "mod-x"),
            },
        )
        self.add(
            "dir-b",
            {
                f"{where}/x/{name}": data
                for where in ("usr/local", "usr/lib/firmware", extras)
                for name, data in DIR_B_FILES.items()
            },
            {},
        )


DIR_B_FILES = {"f": b"from b", "new": b"new from b"}


@pytest.fixture(scope="module")
def attack(
    reference_release: tuple[LocalStore, Release], tmp_path_factory: pytest.TempPathFactory
) -> Attack:
    attack = Attack(reference_release, tmp_path_factory.mktemp("links"))
    attack.add_hostile_extensions()
    return attack


def _check_no_leak(attack: Attack, built: dict[str, Path], tmp: Path) -> tuple[bytes, Path, Path]:
    """Canary unchanged, no secret or environment bytes in the unpacked assets."""
    assert snapshot(attack.canary) == attack.before
    environ = Path("/proc/self/environ").read_bytes()
    early, segment = unpack_initramfs(built["initramfs-amd64.xz"], attack.base, tmp / "initrd")
    sysext = unpack_sysext(built["extensions-amd64.sqsh"], tmp / "sysext")
    assert attack.secret not in early
    for data in [*regular_file_bytes(segment), *regular_file_bytes(sysext)]:
        assert attack.secret not in data
        assert environ not in data
    return early, segment, sysext


def test_links_to_host_files_are_kept_as_links_not_read(attack: Attack, tmp_path: Path) -> None:
    canary = attack.canary
    built = attack.build("leak", "leak", "modleak")
    _, segment, sysext = _check_no_leak(attack, built, tmp_path)
    for tree in (segment, sysext):
        assert os.readlink(tree / "usr/lib/firmware/leak.pem") == str(canary / "secret.pem")
        assert os.readlink(tree / "usr/lib/firmware/env") == "/proc/self/environ"
        assert (tree / "usr/lib/firmware/vendor/real.bin").read_bytes() == b"firmware"
    assert os.readlink(sysext / "usr/local/leak.pem") == str(canary / "secret.pem")
    # The module layer (last) has a usr/lib/modules directory: it replaces modleak's link.
    assert stat.S_ISDIR((sysext / "usr/lib/modules").lstat().st_mode)


def test_microcode_through_a_link_is_neither_read_nor_deleted(
    attack: Attack, tmp_path: Path
) -> None:
    canary = attack.canary
    built = attack.build("ucode", "ucode", "ucode2")
    early, segment, sysext = _check_no_leak(attack, built, tmp_path)
    assert b"host" not in early
    assert b"real intel" in early  # the extension's own microcode still goes to the early cpio
    # ucode2's link is the later layer: it replaces ucode's intel-ucode directory.
    for tree in (segment, sysext):
        assert os.readlink(tree / "usr/lib/firmware/intel-ucode") == str(canary / "ucode")
        assert os.readlink(tree / "usr/lib/firmware/amd-ucode") == str(canary / "ucode")


def test_a_later_directory_replaces_a_link_and_never_writes_through_it(
    attack: Attack, tmp_path: Path
) -> None:
    extras = f"usr/lib/modules/{attack.kver}/extras"
    built = attack.build("write", "whole-firmware", "link-a", "dir-b", "firmware-demo")
    _, segment, sysext = _check_no_leak(attack, built, tmp_path)
    for where in ("usr/local", "usr/lib/firmware", extras):
        x = sysext / where / "x"
        assert stat.S_ISDIR(x.lstat().st_mode), where
        assert {p.name: p.read_bytes() for p in x.iterdir()} == DIR_B_FILES
    x = segment / "usr/lib/firmware/x"
    assert {p.name: p.read_bytes() for p in x.iterdir()} == DIR_B_FILES
    # firmware-demo's firmware comes after the whole-firmware link: its directory wins.
    demo = "usr/lib/firmware/factory/demo-firmware.bin"
    assert (sysext / demo).is_file()
    assert (segment / demo).is_file()


def test_a_later_link_replaces_a_directory(attack: Attack, tmp_path: Path) -> None:
    canary, kver = attack.canary, attack.kver
    built = attack.build("reverse", "dir-b", "link-a")
    _, segment, sysext = _check_no_leak(attack, built, tmp_path)
    assert os.readlink(sysext / "usr/local/x") == str(canary / "local-x")
    assert os.readlink(sysext / f"usr/lib/modules/{kver}/extras/x") == str(canary / "mod-x")
    for tree in (segment, sysext):
        assert os.readlink(tree / "usr/lib/firmware/x") == str(canary / "fw-x")


def test_depmod_does_not_index_modules_through_a_link(attack: Attack, tmp_path: Path) -> None:
    built = attack.build("modlink", "modlink")
    _, segment, sysext = _check_no_leak(attack, built, tmp_path)
    kver = attack.kver
    for tree in (segment / "modules.dep.sqsh.d", sysext):
        deps = (tree / f"usr/lib/modules/{kver}/modules.dep").read_text()
        assert "kernel/drivers/block/zram/zram.ko:" in deps  # depmod did run
        assert "hostdir" not in deps
    link = sysext / f"usr/lib/modules/{kver}/extras/hostdir"
    assert os.readlink(link) == str(attack.canary / "hostmods")  # kept in the image
