"""Installing the bundled reference extensions and overlays (a first-start step).

Plain sources are added as they are. A module recipe (`modules.txt`) is built per release:
the listed modules and their dependencies are copied from the release's `modules.tar` to
`/usr/lib/modules/<kver>/extras/`, the listed names go to
`/usr/lib/modules-load.d/<name>.conf` so the OS loads them at boot, and the manifest's
version becomes `<version>-<release version>`, bound to that release only.

Idempotent: identical content is not stored twice, and a module build already stored for
the release is not rebuilt (so a restart never reads the module tree again).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath

from extensions.bundled import BundledSource, bundled_sources
from extensions.manifest import MANIFEST_NAME, parse_manifest, render_manifest
from workers.catalog.extensions import add_extension, list_extension_records
from workers.catalog.overlays import add_overlay
from workers.catalog.records import ORIGIN_BUNDLED, ExtensionRecord
from workers.errors import InvalidRequest, NotFound
from workers.releases.manifest import MODULES_TAR
from workers.releases.modules import MODULES_ROOT, module_index, module_name, resolve_modules
from workers.releases.stored import Release
from workers.settings import Settings
from workers.store import Store

Progress = Callable[[str], None]
MODULES_LOAD_DIR = "usr/lib/modules-load.d"


def _release_core(version: str) -> str:
    return version.lstrip("v").split("-", 1)[0].split("+", 1)[0]


def _copy_modules(tar_path: Path, kver: str, wanted: dict[str, str], dest: Path) -> None:
    """Copy members `usr/lib/modules/<kver>/<path>` for each wanted path to `dest/<name>`."""
    prefix = f"{MODULES_ROOT}/{kver}/"
    missing = dict(wanted)
    with tarfile.open(tar_path, "r:") as tar:
        for member in tar:
            rel = member.name.removeprefix("./")
            if not rel.startswith(prefix) or rel[len(prefix) :] not in missing:
                continue
            if not member.isfile():
                raise InvalidRequest(f"{MODULES_TAR}: {rel} is not a regular file")
            src = tar.extractfile(member)
            if src is None:
                raise InvalidRequest(f"{MODULES_TAR}: cannot read {rel}")
            with src, (dest / missing.pop(rel[len(prefix) :])).open("xb") as out:
                shutil.copyfileobj(src, out)
    if missing:
        raise InvalidRequest(f"{MODULES_TAR} lacks {', '.join(sorted(missing))}")


def build_module_extension(
    store: Store, release: Release, source: BundledSource, dest: Path
) -> Path:
    """Lay out the extension for recipe `source` and `release` in the new directory `dest`."""
    index = module_index(store, release)
    for requested in source.modules:
        if module_name(requested) in index.builtin:
            raise InvalidRequest(
                f"bundled extension {source.name}: module {requested} is built into kernel "
                f"{index.kernel_version}, so there is nothing to add"
            )
    order = resolve_modules(index, source.modules, release.version)
    kver = release.kernel_version
    extras = dest / "rootfs" / MODULES_ROOT / kver / "extras"
    extras.mkdir(parents=True)
    wanted = {
        index.modules[name].path: PurePosixPath(index.modules[name].path).name for name in order
    }
    with tempfile.TemporaryDirectory(prefix="modules-") as tmp:
        tar_path = release.fetch(store, MODULES_TAR, Path(tmp) / MODULES_TAR)
        _copy_modules(tar_path, kver, wanted, extras)
    load_dir = dest / "rootfs" / MODULES_LOAD_DIR
    load_dir.mkdir(parents=True)
    (load_dir / f"{source.name}.conf").write_text("".join(f"{m}\n" for m in source.modules))
    manifest = parse_manifest((source.path / MANIFEST_NAME).read_bytes())
    bound = replace(
        manifest,
        version=f"{manifest.version}-{release.version}",
        compatibility=f"= {_release_core(release.version)}",
    )
    (dest / MANIFEST_NAME).write_bytes(render_manifest(bound))
    return dest


def _install_module_recipe(
    settings: Settings, store: Store, release: Release, source: BundledSource
) -> ExtensionRecord:
    namespace = settings.extensions_namespace
    for record in list_extension_records(store):
        if (record.full_name, record.release, record.arch, record.origin) == (
            f"{namespace}/{source.name}",
            release.version,
            release.arch,
            ORIGIN_BUNDLED,
        ):
            return record
    with tempfile.TemporaryDirectory(prefix="bundled-") as tmp:
        layout = build_module_extension(store, release, source, Path(tmp) / source.name)
        return add_extension(
            store,
            layout,
            namespace,
            arch=release.arch,
            release=release.version,
            origin=ORIGIN_BUNDLED,
            label=f"bundled extension {source.name}",
            require_compatible=False,
        )


def install_bundled_extensions(
    settings: Settings, store: Store, release: Release, progress: Progress
) -> None:
    """Add every bundled extension (module recipes built for `release`) and overlay.

    A first-start step (`workers.bootstrap.FIRST_START_STEPS`).
    """
    for source in bundled_sources():
        label = f"bundled {source.kind} {source.name}"
        if source.kind == "overlay":
            overlay = add_overlay(
                store,
                source.path,
                settings.extensions_namespace,
                origin=ORIGIN_BUNDLED,
                label=label,
                require_compatible=False,
            )
            progress(f"overlay {overlay.name} {overlay.version} ready")
            continue
        if source.modules:
            try:
                record = _install_module_recipe(settings, store, release, source)
            except (InvalidRequest, NotFound) as exc:
                # e.g. an imported release whose kernel has the module built in: the
                # service still starts, without this one extension for that release.
                progress(f"skipping bundled extension {source.name} for {release.version}: {exc}")
                continue
        else:
            record = add_extension(
                store,
                source.path,
                settings.extensions_namespace,
                origin=ORIGIN_BUNDLED,
                label=label,
                require_compatible=False,
            )
        progress(f"extension {record.full_name} {record.version} ready")
