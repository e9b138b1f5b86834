"""The kernel modules a release can provide, and the dependency closure of a selection.

The index is read from `modules.dep` and `modules.builtin` inside the release's
`modules.tar` and cached as JSON at `module-indexes/<release digest>.json`, so answering a
request never untars the full tree again. Names are normalised as the kernel does (`-` and
`_` are the same character; `_` is the canonical form).

Module names in the index are the loadable (`=m`) modules. Built-in modules are known too:
asking for one resolves to nothing to add (it is always present).
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from workers.errors import InvalidRequest
from workers.releases.manifest import MODULES_TAR
from workers.releases.stored import Release
from workers.store import ObjectNotFound, Store

MODULES_ROOT = "usr/lib/modules"
INDEX_PREFIX = "module-indexes/"
INDEX_SCHEMA = 1
_KO_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
_USER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def module_name(text: str) -> str:
    """`kernel/arch/x86/crypto/crct10dif-pclmul.ko` or `crct10dif-pclmul` → `crct10dif_pclmul`."""
    base = PurePosixPath(text).name
    for suffix in _KO_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


@dataclass(frozen=True)
class ModuleInfo:
    path: str  # relative to usr/lib/modules/<kver>/
    deps: tuple[str, ...]  # every dependency, as modules.dep lists them


@dataclass(frozen=True)
class ModuleIndex:
    kernel_version: str
    modules: Mapping[str, ModuleInfo]
    builtin: frozenset[str]

    def names(self) -> list[str]:
        return sorted(self.modules)

    def to_json(self) -> bytes:
        doc = {
            "schema": INDEX_SCHEMA,
            "kernel_version": self.kernel_version,
            "modules": {
                name: {"path": info.path, "deps": list(info.deps)}
                for name, info in sorted(self.modules.items())
            },
            "builtin": sorted(self.builtin),
        }
        return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> ModuleIndex:
        doc: dict[str, Any] = json.loads(data)
        if doc.get("schema") != INDEX_SCHEMA:
            raise ValueError("unsupported module index schema")
        return cls(
            kernel_version=doc["kernel_version"],
            modules={
                name: ModuleInfo(path=info["path"], deps=tuple(info["deps"]))
                for name, info in doc["modules"].items()
            },
            builtin=frozenset(doc["builtin"]),
        )


def parse_index(kernel_version: str, modules_dep: str, modules_builtin: str) -> ModuleIndex:
    """Build an index from the text of `modules.dep` and `modules.builtin`."""
    modules: dict[str, ModuleInfo] = {}
    for line in modules_dep.splitlines():
        if not line.strip():
            continue
        path, sep, deps = line.partition(":")
        if not sep:
            raise ValueError(f"malformed modules.dep line: {line!r}")
        path = path.strip()
        modules[module_name(path)] = ModuleInfo(
            path=path, deps=tuple(module_name(dep) for dep in deps.split())
        )
    builtin = frozenset(module_name(line) for line in modules_builtin.split() if line)
    return ModuleIndex(kernel_version=kernel_version, modules=modules, builtin=builtin)


def index_from_tar(tar_path: Path) -> ModuleIndex:
    """Read `modules.dep`/`modules.builtin` from a release `modules.tar` in one pass."""
    wanted = {"modules.dep", "modules.builtin"}
    texts: dict[str, str] = {}
    kernel_versions: set[str] = set()
    with tarfile.open(tar_path, "r:") as tar:
        for member in tar:
            parts = member.name.strip("/").split("/")
            if parts[:3] != MODULES_ROOT.split("/") or len(parts) < 4:
                continue
            kernel_versions.add(parts[3])
            if len(parts) == 5 and parts[4] in wanted and member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                texts[parts[4]] = f.read().decode()
    if len(kernel_versions) != 1:
        raise ValueError(
            f"{tar_path.name} must hold exactly one {MODULES_ROOT}/<kver>, "
            f"found {sorted(kernel_versions)}"
        )
    if "modules.dep" not in texts:
        raise ValueError(f"{tar_path.name} has no modules.dep (run depmod)")
    (kver,) = kernel_versions
    return parse_index(kver, texts["modules.dep"], texts.get("modules.builtin", ""))


def index_key(release: Release) -> str:
    return f"{INDEX_PREFIX}{release.digest}.json"


def save_module_index(store: Store, release: Release, index: ModuleIndex) -> ModuleIndex:
    store.put_bytes(index_key(release), index.to_json(), content_type="application/json")
    return index


def module_index(store: Store, release: Release, *, record: bool = True) -> ModuleIndex:
    """The release's module index, from the cache or (once, kept when `record`) from its
    `modules.tar`."""
    try:
        return ModuleIndex.from_json(store.get_bytes(index_key(release)))
    except ObjectNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="modules-index-") as tmp:
        tar_path = release.fetch(store, MODULES_TAR, Path(tmp) / MODULES_TAR)
        index = index_from_tar(tar_path)
    return save_module_index(store, release, index) if record else index


def resolve_modules(index: ModuleIndex, names: Iterable[str], version: str) -> list[str]:
    """The requested modules and everything they depend on, in load order (deps first).

    Built-in modules resolve to nothing; an unknown name raises InvalidRequest naming it.
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in index.modules[name].deps:
            if dep in index.modules:
                visit(dep)
        order.append(name)

    for requested in names:
        name = requested.replace("-", "_")
        if _USER_NAME.match(requested) and name in index.modules:
            visit(name)
        elif not _USER_NAME.match(requested) or name not in index.builtin:
            raise InvalidRequest(
                f'kernel module "{requested}" is not available for version {version}'
            )
    return order
