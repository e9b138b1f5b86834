"""Link-safe tree primitives: every walk and merge of an extension-derived tree uses these.

Links in extensions: an uploaded extension may hold symlinks, absolute ones included (real
Talos extensions have them). To the build they are data inside the image, never paths: no
build step follows one on the host. Trees are walked with `lstat`/`scandir` without
following links, files are opened with `O_NOFOLLOW` (and created with `O_EXCL`), and a path
is only used below a directory this module has just seen to be a real directory, so no
read, write, chmod or unlink ever leaves the build's own work directory. (The work directory
belongs to one build and nothing else changes it meanwhile, so checking each component
with `lstat` before using it is as good as resolving it beneath a directory descriptor.)

Layer conflicts: when several layers put something at the same path, the later layer wins,
as overlayfs shows it: a later directory replaces an earlier link or file at that path (and
is merged into an earlier directory), a later link or file replaces an earlier directory
tree, link or file. Nothing is ever written through a link. The sysext merge, the firmware
merges (initramfs segment and sysext) and the module-tree merge (for depmod) all apply this
rule with `merge_tree`; the initramfs itself stacks its `N.sqsh` layers at boot, where
overlayfs applies it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

_CHUNK = 1 << 20


def kind_of(path: Path) -> str | None:
    """What `path` itself is, not followed: "dir", "file", "link", "other"; None if absent."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def is_real_dir(root: Path, rel: str | os.PathLike[str]) -> bool:
    """Is `root/rel` a directory reached through real directories only (no link on the way)?"""
    path = root
    for part in Path(rel).parts:
        path = path / part
        if kind_of(path) != "dir":
            return False
    return True


def make_dirs(root: Path, rel: str | os.PathLike[str], mode: int | None = None) -> Path:
    """`root/rel` as a real directory: missing components are created (with `mode` when given,
    else the umask's), a link or file in the way is replaced by a directory (the rule: the
    directory being added is the later layer)."""
    path = root
    for part in Path(rel).parts:
        path = path / part
        found = kind_of(path)
        if found == "dir":
            continue
        if found is not None:
            os.unlink(path)
        os.mkdir(path)
        if mode is not None:
            os.chmod(path, mode)
    return path


def read_file(path: Path) -> bytes:
    """The contents of the regular file `path`; OSError if it is a link (never followed)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def read_regular(path: Path) -> bytes | None:
    """The contents of `path` if it is a regular file; None when absent or anything else."""
    return read_file(path) if kind_of(path) == "file" else None


def write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace whatever is at `path` (not a directory) by a new regular file with `data`."""
    if kind_of(path) is not None:
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def copy_regular(src: Path, dest: Path, mode: int | None = None) -> None:
    """Copy the regular file `src` (never a link) to the new file `dest` (never through a
    link); `mode` defaults to the source's permission bits."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as reader:
        st = os.fstat(reader.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{src.name}: not a regular file")
        out_fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(out_fd, "wb") as out:
            shutil.copyfileobj(reader, out, _CHUNK)
            os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode) if mode is None else mode)


def remove(path: Path) -> None:
    """Remove what is at `path`: a directory tree (links inside are removed, not followed),
    a file or a link; nothing when absent."""
    found = kind_of(path)
    if found == "dir":
        shutil.rmtree(path)
    elif found is not None:
        os.unlink(path)


def drop_links(root: Path) -> None:
    """Remove every link below `root`, for a tool that would follow them (depmod)."""
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as it:
            for entry in it:
                if entry.is_symlink():
                    os.unlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))


def merge_tree(
    src: Path, dest: Path, *, file_mode: int | None = None, dir_mode: int | None = None
) -> None:
    """Copy the tree `src` on top of the directory `dest` by the layer rule (module
    docstring). Files keep their permission bits unless `file_mode` is given, directories
    (new or merged into) take the source directory's unless `dir_mode` is given."""
    _merge(src, dest, move=False, file_mode=file_mode, dir_mode=dir_mode)


def move_tree(src: Path, dest: Path) -> None:
    """Like `merge_tree`, but entries are renamed out of `src` (modes kept), which is then
    removed: cheaper when `src` is not needed afterwards."""
    _merge(src, dest, move=True, file_mode=None, dir_mode=None)
    shutil.rmtree(src)


def _merge(
    src: Path, dest: Path, *, move: bool, file_mode: int | None, dir_mode: int | None
) -> None:
    """Both roots must be real directories. A directory's mode is set after its contents
    are in. Iterative: no nesting depth exhausts the interpreter's stack."""
    for root in (src, dest):
        if kind_of(root) != "dir":
            raise NotADirectoryError(f"{root.name}: not a directory")
    modes: list[tuple[Path, int]] = []
    pending = [(src, dest)]
    while pending:
        src_dir, dest_dir = pending.pop()
        with os.scandir(src_dir) as it:
            children = sorted(it, key=lambda e: e.name)
        for child in children:
            s, d = Path(child.path), dest_dir / child.name
            st = child.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                modes.append((d, stat.S_IMODE(st.st_mode) if dir_mode is None else dir_mode))
                if kind_of(d) == "dir":
                    pending.append((s, d))
                    continue
                remove(d)
                if move:
                    os.rename(s, d)
                else:
                    os.mkdir(d)
                    pending.append((s, d))
                continue
            if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise ValueError(f"{child.name}: not a directory, regular file or link")
            remove(d)
            if move:
                os.rename(s, d)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            else:
                copy_regular(s, d, file_mode)
    for path, mode in reversed(modes):
        if kind_of(path) == "dir":  # chmod follows links: only ever on what we made a dir
            os.chmod(path, mode)
