"""Build one asset from its plan: the single code path of the CLI, the web service and workers.

`build_asset(plan, store, workdir, progress)` fetches every input by digest (verified), reuses
cached layers from the store, assembles the asset in `workdir` and returns its path.

Layer cache (`workers.pipeline.layer_cache`), shared by every worker through the store:
- `layers/extension/<k>`: an extension's SquashFS (+ its microcode and the listing of its
  firmware), keyed by the
  extension digest, the tar2sqfs version and `LAYER_RECIPE` (made from the extension's tar
  without unpacking it: `workers.assembly.tree_layer`);
- `layers/modules/<k>`: `modules.dep.sqsh`, keyed by the release, the requested modules and
  the extensions that carry modules;
- `layers/extension-evidence/<k>`: what an extension contributes to the SBOM, written by the
  layer stage (`workers.evidence.extension_files`), keyed by the extension digest.
- `layers/firmware/<k>`: an extension's compressed firmware member of the initramfs, keyed
  by the extension digest and `FIRMWARE_RECIPE` (`workers.pipeline.firmware_cache`).
The initramfs holds the layers uncompressed (they are SquashFS, compressed already), so a
schematic that differs by one extension rebuilds that one layer (and the module layer, if that
extension carries modules), then writes the initramfs: nothing else is compressed again.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import tarfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

from extensions.manifest import Manifest
from extensions.package import materialise, unpack_tar
from workers.assembly.compress import Codec, compress_file
from workers.assembly.disk_tarball import make_tarball
from workers.assembly.extensions_yaml import LayerEntry
from workers.assembly.initramfs import (
    MODULES_LAYER_IMAGE,
    MODULES_ROOT,
    base_modules_tree,
    layer_order,
    make_modules_layer,
    modules_layer_metadata,
    split_extension_extras,
)
from workers.assembly.initramfs_members import (
    initramfs_pieces,
    listings_agree,
    make_extensions_yaml_member,
    make_merged_firmware_member,
    make_microcode_cpio,
)
from workers.assembly.pieces import Piece, write_pieces_file
from workers.assembly.run import ToolError, tool_sessions
from workers.assembly.safetree import is_real_dir
from workers.assembly.squashfs import extract_squashfs, mksquashfs_version
from workers.assembly.sysext import make_sysext, sysext_name
from workers.assembly.tree_firmware import (
    firmware_entries,
    firmware_listing,
    make_tree_firmware_member,
    write_microcode,
)
from workers.assembly.tree_layer import (
    firmware_paths,
    is_tree_dir,
    make_tree_layer,
    tar2sqfs_version,
)
from workers.catalog.extensions import fetch_extension, fetch_verified, read_extension
from workers.errors import FactoryError
from workers.evidence.extension_files import read_extension_files, save_extension_files
from workers.keys.secureboot_key import Signer
from workers.pipeline.boot_media import (
    BootInputs,
    BootMediaBuilder,
    check_signer,
    fetch_grub_dirs,
    uses_grub,
)
from workers.pipeline.disk_formats import converter_for
from workers.pipeline.firmware_cache import (
    MEMBER,
    load_firmware_member,
    save_firmware_member,
)
from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.pipeline.progress import Progress, quiet
from workers.pipeline.workdirs import fresh_dir
from workers.planning.asset_kinds import ASSET_KINDS, COMPRESSIONS, load_function
from workers.planning.cmdline import asset_cmdline
from workers.planning.plans import SOURCE_BLOB, ExtensionInput, Plan
from workers.planning.profiles import Kind
from workers.releases.manifest import (
    INITRAMFS,
    MODULES_TAR,
    VMLINUZ,
)
from workers.releases.modules import module_index, resolve_modules
from workers.releases.stored import Release, blob_key, load_release
from workers.store import Store

MODULES_STEP = "building the kernel modules layer (requested modules and extension modules)"
# Bump when the bytes of a cached layer would change for the same inputs.
LAYER_RECIPE = 3
# Extension layers built at once: two keep both cores of a small worker busy (a big layer's
# mksquashfs uses every core by itself; small layers are mostly fixed costs, which overlap).
LAYER_WORKERS = 2


class ReleaseChanged(FactoryError):
    """The stored release no longer matches the digest the plan was made against."""


class StepFailed(FactoryError):
    """A build step failed. The message names the step in the schematic's terms (which
    extension, which stage) and the tool; its command line, stderr and the work paths go to
    the worker log only (the cause of this exception)."""


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    """Say a tool or file failure in this block as a failure of `what` (the innermost step
    names it)."""
    try:
        yield
    except ToolError as error:
        raise StepFailed(f"{what}: {error.summary}") from error
    except OSError as error:
        raise StepFailed(f"{what}: {error.strerror or 'a file operation failed'}") from error


def _layer_step(ext: ExtensionInput) -> str:
    if ext.source == SOURCE_BLOB:
        # The schematic's own layer, or its embedded-config one.
        layer = "own" if ext.name == "schematic" else ext.name
        return f"building the schematic's {layer} layer"
    return f"building the layer of extension {ext.name} {ext.version}"


def build_asset(
    plan: Plan,
    store: Store,
    workdir: Path,
    progress: Progress = quiet,
    signer: Signer | None = None,
) -> Path:
    """Build the asset `plan` describes inside the existing directory `workdir`.

    SecureBoot plans need `signer` (`plan.signer(settings)`), with the certificate the plan
    was made for. A failing step is a `StepFailed` naming it."""
    with _step(f"building {plan.profile.path}"):
        return _build_asset(plan, store, workdir, progress, signer)


def _build_asset(
    plan: Plan, store: Store, workdir: Path, progress: Progress, signer: Signer | None
) -> Path:
    release = load_release(store, plan.version, plan.arch)
    if release.digest != plan.release_digest:
        raise ReleaseChanged(
            f"release {plan.version}/{plan.arch} is {release.digest}, "
            f"the plan was made for {plan.release_digest}"
        )
    kind = plan.kind
    signer = check_signer(plan, signer)
    if kind is Kind.KERNEL:
        progress("kernel", 0)
        kernel = release.fetch(store, VMLINUZ, workdir / "kernel")
        progress("kernel", 100)
        return kernel
    if kind is Kind.CMDLINE:
        out = workdir / "cmdline"
        out.write_text(asset_cmdline(plan, release))
        progress("cmdline", 100)
        return out
    if kind is Kind.SYSEXT:
        return build_sysext(plan, release, store, workdir, progress)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # GRUB's files are fetched and unpacked on the other core while the initramfs builds,
        # in this build's context: its tools run in the same sandbox, with the same timeout.
        grub = (
            pool.submit(contextvars.copy_context().run, fetch_grub_dirs, release, store, workdir)
            if uses_grub(plan)
            else None
        )
        if kind is Kind.INITRAMFS:
            return build_initramfs(plan, release, store, workdir / "initramfs", progress)
        pieces = initramfs_pieces_for(plan, release, store, workdir / "initramfs", progress)
        progress("initramfs", 100)
        inputs = BootInputs(
            release=release,
            store=store,
            workdir=workdir,
            kernel=release.fetch(store, VMLINUZ, workdir / "vmlinuz"),
            initramfs_pieces=tuple(pieces),
            cmdline=asset_cmdline(plan, release),
            signer=signer,
            grub=grub,
        )
        row = ASSET_KINDS[kind]
        progress(row.stage, 0)
        out = cast(BootMediaBuilder, load_function(row.builder))(plan, inputs)
        progress(row.stage, 100)
        if kind is Kind.IMAGE:
            return finish_disk(plan, out, workdir, release.source_date_epoch, progress)
        return out


def finish_disk(plan: Plan, raw: Path, workdir: Path, epoch: int, progress: Progress) -> Path:
    """Convert the raw disk to the asked format, then compress (or tar + gzip) it."""
    image = raw
    profile = plan.profile
    convert = converter_for(profile.disk_format)
    if convert is not None:
        progress("convert", 0)
        dest = workdir / f"disk.{profile.disk_format}"
        options = profile.disk_format_options
        image = convert(raw, dest, options=options, workdir=workdir, epoch=epoch)
        raw.unlink()
        progress("convert", 100)
    if not profile.compression:
        return image
    progress("compress", 0)
    if profile.compression == "tar.gz":
        tar = make_tarball(
            image, workdir / "disk.tar", member=f"disk.{profile.disk_format}", epoch=epoch
        )
        image.unlink()
        image, codec = tar, Codec.GZIP
    else:
        codec = Codec(COMPRESSIONS[profile.compression].codec)
    out = compress_file(image, workdir / f"{image.name}.{profile.compression}", codec)
    image.unlink()
    progress("compress", 100)
    return out


def build_initramfs(
    plan: Plan, release: Release, store: Store, workdir: Path, progress: Progress
) -> Path:
    """The initramfs (`initramfs_pieces_for`) written to a file."""
    pieces = initramfs_pieces_for(plan, release, store, workdir, progress)
    with _step("adding the extensions to the initramfs"):
        out = write_pieces_file(workdir / "initramfs.xz", pieces)
    progress("initramfs", 100)
    return out


def initramfs_pieces_for(
    plan: Plan, release: Release, store: Store, workdir: Path, progress: Progress
) -> list[Piece]:
    """[microcode] ‖ base ‖ one raw member per cached (or freshly built) layer ‖
    extensions.yaml and the firmware, compressed (`workers.assembly.initramfs_members`), as
    pieces: every member is made, the initramfs itself is not written yet."""
    workdir.mkdir(parents=True)
    # Read by this process only (copied into the initramfs, or its modules read for depmod).
    base = release.fetch(store, INITRAMFS, workdir / "base.initramfs", in_place=True)
    members = _build_members(plan, release, store, base, workdir, progress)
    progress("initramfs", 90)
    with _step("adding the extensions to the initramfs"):
        return initramfs_pieces(
            microcode=members.microcode,
            base=base,
            layers=members.layers,
            tail=members.tail,
            epoch=release.source_date_epoch,
        )


def build_sysext(
    plan: Plan, release: Release, store: Store, workdir: Path, progress: Progress
) -> Path:
    """`extensions-<arch>.sqsh`: the initramfs' layers (cached ones reused) merged into one
    systemd-sysext image, in layer order, the module layer last."""
    epoch = release.source_date_epoch
    layers = _extension_layers(plan, store, workdir, epoch, progress)
    ordered = [layers[i] for i in layer_order(len(layers))]
    images: list[tuple[Path, Path | None]] = [
        (layer.sqsh, _unpacked_firmware(store, layer, workdir / "sysext-firmware" / str(n)))
        for n, layer in enumerate(ordered)
    ]
    with_modules = [layer for layer in layers if layer.has_modules]
    if plan.kernel_modules or with_modules:
        progress("modules", 0)
        base = release.fetch(store, INITRAMFS, workdir / "base.initramfs", in_place=True)
        with _step(MODULES_STEP):
            modules = _modules_layer(plan, release, store, base, with_modules, workdir / "mods")
        images.append((modules, None))
    progress("sysext", 50)
    schematic = next(e.version for e in plan.extensions if e.source == SOURCE_BLOB)
    with _step("merging the extensions into one system extension image"):
        out = make_sysext(
            workdir / "extensions.sqsh",
            workdir=fresh_dir(workdir / "sysext-work"),
            layers=images,
            name=sysext_name(schematic),
            arch=plan.arch,
            epoch=epoch,
        )
    progress("sysext", 100)
    return out


@dataclasses.dataclass(frozen=True)
class _Layer:
    sqsh: Path
    microcode: Path | None  # a directory with kernel/x86/microcode/<vendor>.bin
    metadata: Manifest
    has_modules: bool
    digest: str
    ext: ExtensionInput
    # Its firmware as path below usr → is a directory (`listings_agree`); None: none.
    firmware: dict[str, bool] | None


@dataclasses.dataclass(frozen=True)
class _Members:
    microcode: Path | None
    layers: list[tuple[str, Path]]  # (N.sqsh or modules.dep.sqsh, its SquashFS), in order
    tail: list[Path]  # compressed members


def _build_members(
    plan: Plan, release: Release, store: Store, base: Path, workdir: Path, progress: Progress
) -> _Members:
    epoch = release.source_date_epoch
    layers = _extension_layers(plan, store, workdir, epoch, progress)
    progress("extensions", 100)
    order = layer_order(len(layers))
    entries = [LayerEntry(f"{i}.sqsh", layers[i].metadata) for i in order]
    files = [(f"{i}.sqsh", layers[i].sqsh) for i in order]
    with_modules = [layer for layer in layers if layer.has_modules]
    if plan.kernel_modules or with_modules:
        progress("modules", 0)
        with _step(MODULES_STEP):
            modules = _modules_layer(plan, release, store, base, with_modules, workdir / "modules")
        metadata = modules_layer_metadata(release.kernel_version)
        entries.append(LayerEntry(MODULES_LAYER_IMAGE, metadata))
        files.append((MODULES_LAYER_IMAGE, modules))
        progress("modules", 100)
    progress("initramfs", 0)
    ordered = [layers[i] for i in order]
    with _step("adding the extensions to the initramfs"):
        extras = [layer.microcode for layer in ordered if layer.microcode is not None]
        microcode = make_microcode_cpio(extras, workdir / "microcode", epoch=epoch)
        tail = [make_extensions_yaml_member(entries, workdir / "extensions-yaml", epoch=epoch)]
        tail += _firmware_members(store, ordered, workdir / "firmware", epoch)
    return _Members(microcode, files, tail)


def _firmware_members(store: Store, layers: list[_Layer], workdir: Path, epoch: int) -> list[Path]:
    """The firmware members of `layers` (in layer order): one cached member per extension
    with firmware, or one merged member when those could unpack differently."""
    with_firmware = [layer for layer in layers if layer.firmware is not None]
    if not listings_agree([layer.firmware for layer in with_firmware]):
        trees = [
            _unpacked_firmware(store, layer, workdir / f"unpacked-{n}")
            for n, layer in enumerate(with_firmware)
        ]
        extras = [tree for tree in trees if tree is not None]
        return [make_merged_firmware_member(extras, workdir / "merged", epoch=epoch)]
    return [
        _firmware_member(store, layer, workdir / str(n), epoch)
        for n, layer in enumerate(with_firmware)
    ]


def _firmware_member(store: Store, layer: _Layer, workdir: Path, epoch: int) -> Path:
    """The extension's cached firmware member (the layer stage made it), or made again from
    its tar when the cache lost it."""
    member = load_firmware_member(store, layer.digest, workdir, epoch=epoch)
    if member is not None:
        return member
    workdir.mkdir(parents=True, exist_ok=True)
    with read_extension(_extension_tar(store, layer.ext, workdir), workdir) as (_, tree):
        entries = firmware_entries(tree)
        if entries is None:
            raise FactoryError(f"extension {layer.digest} has no firmware directory")
        member = make_tree_firmware_member(entries, workdir / MEMBER, epoch=epoch)
    save_firmware_member(store, layer.digest, member, epoch=epoch)
    return member


def _unpacked_firmware(store: Store, layer: _Layer, workdir: Path) -> Path | None:
    """A directory with the extension's `usr/lib/firmware`, unpacked from its tar (for the
    merged member and the sysext; none when it has no firmware)."""
    if layer.firmware is None:
        return None
    workdir.mkdir(parents=True)
    with read_extension(_extension_tar(store, layer.ext, workdir), workdir) as (_, tree):
        (workdir / "extension").mkdir()
        materialise(tree, workdir / "extension", firmware_paths(tree))
    split_extension_extras(workdir / "extension" / "rootfs", workdir / "extras")
    return workdir / "extras"


def _extension_tar(store: Store, ext: ExtensionInput, workdir: Path) -> Path:
    """The extension's verified tar: the local store's own file, else downloaded into
    `workdir` (read by this process only)."""
    tar = workdir / "extension.tar"
    if ext.source == SOURCE_BLOB:
        return fetch_verified(store, blob_key(ext.digest), ext.digest, tar, in_place=True)
    return fetch_extension(store, ext.digest, tar, in_place=True)


def _extension_layers(
    plan: Plan, store: Store, workdir: Path, epoch: int, progress: Progress
) -> list[_Layer]:
    """Every extension's layer (`workdir/ext-<n>`), in schematic order, LAYER_WORKERS at a
    time: one layer's tool runs while another's fetch and checks run, on both cores. Each
    runs in this build's context (same sandbox, same timeout; each thread's tools in one
    sandbox session); the first failure in schematic order is raised."""

    failed = threading.Event()

    def one(number: int, ext: ExtensionInput) -> _Layer:
        # Layers start in schematic order, so a skipped one comes after the failure that
        # is raised below: none is started once one has failed.
        if failed.is_set():
            raise _Skipped
        try:
            with _step(_layer_step(ext)):
                return _extension_layer(store, ext, workdir / f"ext-{number}", epoch)
        except BaseException:
            failed.set()
            raise

    total = max(len(plan.extensions), 1)
    # One sandbox per thread for every layer's tools, not one bwrap start per tool run.
    with tool_sessions(), ThreadPoolExecutor(max_workers=LAYER_WORKERS) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, one, number, ext)
            for number, ext in enumerate(plan.extensions)
        ]
        layers = []
        for number, future in enumerate(futures):
            progress("extensions", number * 100 // total)
            layers.append(future.result())
    return layers


class _Skipped(Exception):
    """A layer not started because an earlier one failed (never raised out of a build)."""


def _extension_layer(store: Store, ext: ExtensionInput, workdir: Path, epoch: int) -> _Layer:
    """One extension's layer, from the cache or built from its verified tar (read in place
    from a local store: `workers.assembly.tree_layer`)."""
    prefix = cache_key(
        "extension",
        {
            "digest": ext.digest,
            "epoch": epoch,
            "tar2sqfs": tar2sqfs_version(),
            "recipe": LAYER_RECIPE,
        },
    )
    entry = load_entry(store, prefix, workdir / "cached")
    if entry is None:
        workdir.mkdir(parents=True, exist_ok=True)
        tar = _extension_tar(store, ext, workdir)
        microcode = workdir / "microcode"
        with read_extension(tar, workdir) as (manifest, tree):
            # The SBOM step's view of the extension, read here (on a layer thread) from the
            # tar just verified and checked, and kept for every later build.
            save_extension_files(store, ext.digest, read_extension_files(tar, manifest))
            has_modules = is_tree_dir(tree, f"rootfs/{MODULES_ROOT}")
            sqsh = make_tree_layer(tree, workdir / "layer.sqsh", epoch=epoch)
            # Microcode and firmware (most extensions have none) from the tree too: the
            # firmware member is made and cached here, its listing kept with the layer.
            has_microcode = write_microcode(tree, microcode)
            entries = firmware_entries(tree)
            if entries is not None:
                member = make_tree_firmware_member(entries, workdir / MEMBER, epoch=epoch)
                save_firmware_member(store, ext.digest, member, epoch=epoch)
        firmware = None if entries is None else firmware_listing(entries)
        files = {"layer.sqsh": sqsh}
        if has_microcode:
            files["microcode.tar"] = _tar_dir(microcode, workdir / "microcode.tar")
        info = {
            "metadata": dataclasses.asdict(manifest),
            "has_modules": has_modules,
            "firmware": firmware,
        }
        # Nothing writes these files again: the cache keeps these very files.
        save_entry(store, prefix, files, info, adopt=True)
        return _Layer(
            sqsh,
            microcode if has_microcode else None,
            manifest,
            has_modules,
            ext.digest,
            ext,
            firmware,
        )
    unpacked = None
    if "microcode.tar" in entry.files:
        unpacked = workdir / "microcode"
        unpacked.mkdir(parents=True)
        unpack_tar(entry.files["microcode.tar"], unpacked)
    return _Layer(
        entry.files["layer.sqsh"],
        unpacked,
        Manifest(**entry.info["metadata"]),
        bool(entry.info["has_modules"]),
        ext.digest,
        ext,
        entry.info["firmware"],
    )


def _tar_dir(directory: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as archive:
        for child in sorted(directory.iterdir()):
            archive.add(child, arcname=child.name)
    return dest


def _modules_layer(
    plan: Plan, release: Release, store: Store, base: Path, layers: list[_Layer], workdir: Path
) -> Path:
    """`modules.dep.sqsh`, from the cache or built (see `make_modules_layer`)."""
    inputs = {
        "release": release.digest,
        "modules": list(plan.kernel_modules),
        "extensions": [layer.digest for layer in layers],
        "mksquashfs": mksquashfs_version(),
        "recipe": LAYER_RECIPE,
    }
    prefix = cache_key("modules", inputs)
    entry = load_entry(store, prefix, workdir / "cached")
    if entry is not None:
        return entry.files["layer.sqsh"]
    workdir.mkdir(parents=True, exist_ok=True)
    kver = release.kernel_version
    index = module_index(store, release)
    closure = resolve_modules(index, plan.kernel_modules, release.version)
    # Its unsquashfs, depmod and mksquashfs runs in one sandbox, not a bwrap start each.
    with tool_sessions():
        extension_trees = []
        for number, layer in enumerate(layers):
            root = extract_squashfs(layer.sqsh, workdir / f"ext-{number}", f"{MODULES_ROOT}/{kver}")
            if is_real_dir(root, MODULES_ROOT / kver):
                extension_trees.append(root / MODULES_ROOT / kver)
        sqsh = make_modules_layer(
            dest=workdir / "layer.sqsh",
            workdir=workdir,
            kernel_version=kver,
            base_modules=base_modules_tree(base, workdir, kver),
            modules_tar=release.fetch(store, MODULES_TAR, workdir / MODULES_TAR),
            closure_paths=[index.modules[name].path for name in closure],
            extension_modules=extension_trees,
            requested=plan.kernel_modules,
            epoch=release.source_date_epoch,
        )
    save_entry(store, prefix, {"layer.sqsh": sqsh}, {"closure": closure})
    (workdir / MODULES_TAR).unlink()
    return sqsh
