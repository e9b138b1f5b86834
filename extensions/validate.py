"""What a Talos extension may contain, checked on the staged tree before anything is stored.

Rules (talos-formats §1.1, §1.4, plus what a factory accepting third-party uploads needs):
- top level: exactly `manifest.yaml` (a regular file) and `rootfs/` (a directory);
- only directories, regular files and symlinks (devices, FIFOs and sockets are refused when
  staged; hard links were turned into copies);
- no world-writable entries (symlinks excepted: their mode means nothing), no setuid/setgid;
- every non-directory under `rootfs/` sits at or below an allowed path; a directory must be
  on the way to one (an ancestor) or below one;
- a symlink's target, resolved lexically from the link's directory (absolute targets from the
  root of `rootfs/`), never climbs above `rootfs/`.

Allowed paths are the usr-merged set Talos ≥1.10 uses, matched on a **path-component
boundary** (`/usr/local` allows `/usr/local/bin/x` but not `/usr/localevil`), which is
stricter than upstream's plain string prefix. Two additions keep what upstream's string
prefix implicitly allowed or what our reference OS needs: `/etc/ld.so.conf.d` (upstream's
`/etc/ld.so.conf` prefix covers it) and `/usr/lib/modules-load.d` (module load lists, read
by the reference OS at boot).
"""

from __future__ import annotations

from extensions.errors import ExtensionError
from extensions.manifest import MANIFEST_NAME, Manifest, parse_manifest
from extensions.tree import Entry, Tree

ROOTFS = "rootfs"
ALLOWED_PATHS: tuple[str, ...] = (
    "/etc/cri/conf.d",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/vulkan",
    "/usr/bin/ldconfig",
    "/usr/bin/nvidia-cdi-hook",
    "/usr/bin/nvidia-ctk",
    "/usr/bin/nvidia-modprobe",
    "/usr/bin/nvidia-pcc",
    "/usr/bin/nvidia-smi",
    "/usr/bin/nvme",
    "/usr/lib/firmware",
    "/usr/lib/ld-linux-aarch64.so.1",
    "/usr/lib/ld-linux-x86-64.so.2",
    "/usr/lib/modules",
    "/usr/lib/modules-load.d",
    "/usr/lib/udev/rules.d",
    "/usr/local",
    "/usr/share/egl",
    "/usr/share/glvnd",
)


def is_allowed_path(path: str) -> bool:
    """Is absolute `path` (inside rootfs) at or below an allowed path?"""
    return any(path == a or path.startswith(a + "/") for a in ALLOWED_PATHS)


def leads_to_allowed_path(path: str) -> bool:
    """Is absolute directory `path` an ancestor of an allowed path (e.g. `/usr/lib`)?"""
    return path == "/" or any(a.startswith(path + "/") for a in ALLOWED_PATHS)


def symlink_escapes(link: str, target: str) -> bool:
    """Does `target`, read from absolute `link`, climb above the root? (lexical, no I/O)"""
    base = [] if target.startswith("/") else link.strip("/").split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not base:
                return True
            base.pop()
        else:
            base.append(part)
    return False


def check_modes(label: str, path: str, entry: Entry) -> None:
    if entry.mode & 0o6000:
        raise ExtensionError(f"{label}: {path}: setuid/setgid bits are not allowed")
    if entry.kind != "symlink" and entry.mode & 0o002:
        raise ExtensionError(f"{label}: {path}: world-writable entries are not allowed")


def _check_rootfs_entry(label: str, path: str, entry: Entry) -> None:
    inside = "/" + path[len(ROOTFS) + 1 :] if path != ROOTFS else "/"
    if entry.kind == "dir":
        if not (is_allowed_path(inside) or leads_to_allowed_path(inside)):
            raise ExtensionError(f"{label}: {path}: directory outside the allowed paths")
        return
    if not is_allowed_path(inside):
        raise ExtensionError(
            f"{label}: {path}: {inside} is outside the allowed paths ({', '.join(ALLOWED_PATHS)})"
        )
    if entry.kind == "symlink":
        if not entry.target or len(entry.target) > 4096:
            raise ExtensionError(f"{label}: {path}: empty or overlong symlink target")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in entry.target):
            raise ExtensionError(f"{label}: {path}: control characters in symlink target")
        if symlink_escapes(inside, entry.target):
            raise ExtensionError(
                f"{label}: {path}: symlink to {entry.target!r} resolves outside rootfs/"
            )


def validate_extension_tree(tree: Tree) -> Manifest:
    """Check a staged extension; return its manifest. ExtensionError names the entry."""
    label = tree.label
    tree.check_parents()
    has_rootfs = False
    for path, entry in sorted(tree.entries.items()):
        top = path.split("/", 1)[0]
        check_modes(label, path, entry)
        if top == ROOTFS:
            if path == ROOTFS and entry.kind != "dir":
                raise ExtensionError(f"{label}: rootfs is not a directory")
            has_rootfs = True
            _check_rootfs_entry(label, path, entry)
        elif path == MANIFEST_NAME:
            if entry.kind != "file":
                raise ExtensionError(f"{label}: {MANIFEST_NAME} is not a regular file")
        else:
            raise ExtensionError(
                f"{label}: unexpected file {path}: only {MANIFEST_NAME} and rootfs/ may be at "
                "the top level"
            )
    manifest_entry = tree.entries.get(MANIFEST_NAME)
    if manifest_entry is None:
        raise ExtensionError(f"{label}: missing {MANIFEST_NAME}")
    if not has_rootfs:
        raise ExtensionError(f"{label}: missing rootfs/")
    limit = tree.budget.limits.max_manifest_bytes
    if manifest_entry.size > limit:
        raise ExtensionError(f"{label}: {MANIFEST_NAME}: larger than {limit} bytes")
    try:
        return parse_manifest(manifest_entry.read_bytes(), limit)
    except ExtensionError as exc:
        raise ExtensionError(f"{label}: {exc}") from None
