"""Board overlays as data only: files for the ESP, rendered templates, kernel args, a raw write.

No program from an overlay ever runs (unlike upstream's overlay installers, talos-formats §7).
Layout of a source (directory, tar, tar.gz, tar.zst or OCI layout, like extensions):

    manifest.yaml
    esp/...          copied to the ESP at the same relative path
    templates/...    text rendered with `overlay.options`, then placed on the ESP likewise
    raw/<file>       the blob `rawWrite` puts at a byte offset of the disk

    version: v1alpha1
    metadata:
      name: testboard
      version: 1.0.0
      description: ...
      compatibility: ">= 1.0.0"          # the same range syntax as extensions
    kernelArgs: [console=ttyS0,115200]
    partitionOffset: 128                 # LBAs the GPT entry array (and partitions) skip
    rawWrite: {file: marker.bin, offset: 0x8000}
    templates:
      config.txt: {replaceOption: configTxt, appendOption: configTxtAppend}

Rendering is deliberately simple: a template's text is used as is, replaced by the string
option named `replaceOption` when given, and followed by the string option `appendOption`
when given (siderolabs' `configTxt`/`configTxtAppend` semantics). No expressions, no code.
Only directories and regular files; names limited to characters safe on FAT; nothing may
land on the bootloader's own ESP paths (`EFI/BOOT`, `EFI/Linux`, `loader`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from extensions.canonical import CanonicalTar, write_canonical_tar
from extensions.compat import parse_range
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS, Limits
from extensions.manifest import MANIFEST_NAME, MANIFEST_VERSION, check_name, check_version
from extensions.sources import stage_archive, stage_source
from extensions.strict_yaml import expect_mapping, expect_string, load_strict_yaml
from extensions.tree import Entry, Tree
from extensions.validate import check_modes

ESP, TEMPLATES, RAW = "esp", "templates", "raw"
GPT_ENTRY_ARRAY_BYTES = 128 * 128  # 128 entries of 128 bytes
PARTITION_ALIGNMENT = 1024 * 1024
MAX_KERNEL_ARGS = 64
MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_OPTION_BYTES = 64 * 1024
_FAT_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_KERNEL_ARG = re.compile(r"^[\x21-\x7e]{1,1024}$")
_RESERVED_ESP = (("efi", "boot"), ("efi", "linux"), ("loader",))


@dataclass(frozen=True)
class RawWrite:
    file: str  # name under raw/
    offset: int  # byte offset on the disk


@dataclass(frozen=True)
class TemplateSpec:
    path: str  # relative to templates/ (and to the ESP root)
    replace_option: str
    append_option: str


@dataclass(frozen=True)
class OverlayManifest:
    name: str
    version: str
    description: str
    compatibility: str
    kernel_args: tuple[str, ...] = ()
    partition_offset: int = 0
    raw_write: RawWrite | None = None
    templates: tuple[TemplateSpec, ...] = ()

    @property
    def option_names(self) -> tuple[str, ...]:
        names = {n for t in self.templates for n in (t.replace_option, t.append_option) if n}
        return tuple(sorted(names))


def _integer(value: object, where: str, minimum: int, maximum: int) -> int:
    if not isinstance(value, str):
        raise ExtensionError(f"{where}: expected an integer")
    try:
        number = int(value, 0)
    except ValueError:
        raise ExtensionError(f'{where}: "{value}" is not an integer') from None
    if not minimum <= number <= maximum:
        raise ExtensionError(f"{where}: {number} is outside {minimum}..{maximum}")
    return number


def _option_name(value: object, where: str) -> str:
    name = expect_string(value, where, 64)
    if name and not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", name):
        raise ExtensionError(f'{where}: "{name}" is not a valid option name')
    return name


def _kernel_args(value: object, where: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, list) or len(value) > MAX_KERNEL_ARGS:
        raise ExtensionError(f"{where}: expected a list of at most {MAX_KERNEL_ARGS}")
    for i, arg in enumerate(value):
        if not isinstance(arg, str) or not _KERNEL_ARG.match(arg):
            raise ExtensionError(f"{where}[{i}]: one argument, no spaces or control characters")
    return tuple(value)


def _raw_write(value: object, where: str) -> RawWrite | None:
    if value is None or value == "":
        return None
    raw = expect_mapping(value, where, {"file", "offset"})
    name = expect_string(raw.get("file"), f"{where}.file", 255, required=True)
    if not _FAT_SAFE.match(name):
        raise ExtensionError(f'{where}.file: "{name}" is not a plain file name')
    return RawWrite(name, _integer(raw.get("offset"), f"{where}.offset", 0, 1 << 40))


def _templates(value: object, where: str) -> tuple[TemplateSpec, ...]:
    if value is None or value == "":
        return ()
    if not isinstance(value, dict):
        raise ExtensionError(f"{where}: expected a mapping")
    specs = []
    for path, spec in sorted(value.items()):
        at = f"{where}.{path}"
        fields = expect_mapping(spec, at, {"replaceOption", "appendOption"})
        specs.append(
            TemplateSpec(
                path=_esp_path(path, at),
                replace_option=_option_name(fields.get("replaceOption"), f"{at}.replaceOption"),
                append_option=_option_name(fields.get("appendOption"), f"{at}.appendOption"),
            )
        )
    return tuple(specs)


def parse_overlay_manifest(
    data: bytes, max_bytes: int = DEFAULT_LIMITS.max_manifest_bytes
) -> OverlayManifest:
    """Parse and check an overlay `manifest.yaml`; ExtensionError names the field."""
    where = MANIFEST_NAME
    doc = load_strict_yaml(data, where, max_bytes)
    if doc is None or doc == "":
        raise ExtensionError(f"{where}: empty")
    keys = {"version", "metadata", "kernelArgs", "partitionOffset", "rawWrite", "templates"}
    top = expect_mapping(doc, where, keys)
    fmt = expect_string(top.get("version"), f"{where}: version", 64, required=True)
    if fmt != MANIFEST_VERSION:
        raise ExtensionError(
            f'{where}: version: unsupported "{fmt}", expected "{MANIFEST_VERSION}"'
        )
    meta_keys = {"name", "version", "description", "compatibility"}
    meta = expect_mapping(top.get("metadata"), f"{where}: metadata", meta_keys)
    at = f"{where}: metadata."
    compatibility = expect_string(meta.get("compatibility"), at + "compatibility", 1024)
    try:
        parse_range(compatibility)
    except ExtensionError as exc:
        raise ExtensionError(f"{at}compatibility: {exc}") from None
    offset = top.get("partitionOffset")
    name = expect_string(meta.get("name"), at + "name", 128, required=True)
    version = expect_string(meta.get("version"), at + "version", 128, required=True)
    return OverlayManifest(
        name=check_name(name, at + "name"),
        version=check_version(version, at + "version"),
        description=expect_string(meta.get("description"), at + "description", 16 * 1024),
        compatibility=compatibility,
        kernel_args=_kernel_args(top.get("kernelArgs"), f"{where}: kernelArgs"),
        partition_offset=_integer(offset, f"{where}: partitionOffset", 0, 1 << 24) if offset else 0,
        raw_write=_raw_write(top.get("rawWrite"), f"{where}: rawWrite"),
        templates=_templates(top.get("templates"), f"{where}: templates"),
    )


def _esp_path(path: str, where: str) -> str:
    parts = path.split("/")
    if not all(_FAT_SAFE.match(p) for p in parts):
        raise ExtensionError(f'{where}: "{path}": names may only use letters, digits, "._+-"')
    folded = tuple(p.casefold() for p in parts)
    for reserved in _RESERVED_ESP:
        if folded[: len(reserved)] == reserved:
            raise ExtensionError(f'{where}: "{path}" would replace the bootloader\'s ESP files')
    return path


def check_raw_layout(offset: int, size: int, partition_offset: int, sector_size: int = 512) -> None:
    """A raw write must miss the protective MBR, the GPT header and the entry array, and end
    before the first partition.

    The GPT header is LBA 1, the main entry array starts at LBA `2 + partition_offset`
    (talos-formats §4.1), the first partition at the next 1 MiB boundary after the array.
    """
    start, end = offset, offset + size
    header_end = 2 * sector_size
    array_start = (2 + partition_offset) * sector_size
    array_end = array_start + GPT_ENTRY_ARRAY_BYTES
    first_partition = -(-array_end // PARTITION_ALIGNMENT) * PARTITION_ALIGNMENT
    if start < header_end:
        raise ExtensionError(
            f"rawWrite at byte {offset} overlaps the protective MBR or GPT header "
            f"(bytes below {header_end})"
        )
    if start < array_end and end > array_start:
        raise ExtensionError(
            f"rawWrite [{start}, {end}) overlaps the GPT entry array [{array_start}, {array_end}): "
            f"raise partitionOffset to at least {-(-end // sector_size) - 2}"
        )
    if end > first_partition:
        raise ExtensionError(
            f"rawWrite [{start}, {end}) runs into the first partition at byte {first_partition}"
        )


def _load_manifest(tree: Tree) -> OverlayManifest:
    entry = tree.entries.get(MANIFEST_NAME)
    if entry is None or entry.kind != "file":
        raise ExtensionError(f"{tree.label}: missing {MANIFEST_NAME}")
    try:
        return parse_overlay_manifest(entry.read_bytes(), tree.budget.limits.max_manifest_bytes)
    except ExtensionError as exc:
        raise ExtensionError(f"{tree.label}: {exc}") from None


def _check_entry(label: str, path: str, item: Entry) -> None:
    """Placement and type rules for one overlay entry other than the manifest."""
    check_modes(label, path, item)
    top, _, rest = path.partition("/")
    if top not in (ESP, TEMPLATES, RAW):
        raise ExtensionError(
            f"{label}: unexpected file {path}: only {MANIFEST_NAME}, esp/, templates/ and raw/ "
            "may be at the top level"
        )
    if item.kind == "symlink":
        raise ExtensionError(f"{label}: {path}: symlinks are not allowed in overlays")
    if not rest:
        if item.kind != "dir":
            raise ExtensionError(f"{label}: {path}: must be a directory")
    elif top == RAW and item.kind == "dir":
        raise ExtensionError(f"{label}: {path}: raw/ holds only the rawWrite file")
    elif top != RAW:
        _esp_path(rest, f"{label}: {path}")


def _check_template(label: str, path: str, item: Entry) -> None:
    if item.size > MAX_TEMPLATE_BYTES:
        raise ExtensionError(f"{label}: {path}: larger than {MAX_TEMPLATE_BYTES} bytes")
    try:
        item.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ExtensionError(f"{label}: {path}: templates must be UTF-8 text") from None


def validate_overlay_tree(tree: Tree) -> OverlayManifest:
    """Check a staged overlay; return its manifest. ExtensionError names the entry."""
    label = tree.label
    tree.check_parents()
    manifest = _load_manifest(tree)
    on_esp: dict[str, str] = {}  # case-folded ESP path → entry
    templates: set[str] = set()
    raw_files: dict[str, int] = {}
    for path, item in sorted(tree.entries.items()):
        if path == MANIFEST_NAME:
            continue
        _check_entry(label, path, item)
        top, _, rest = path.partition("/")
        if item.kind != "file":
            continue
        if top == RAW:
            raw_files[rest] = item.size
            continue
        clash = on_esp.setdefault(rest.casefold(), path)
        if clash != path:
            raise ExtensionError(
                f"{label}: {path}: clashes with {clash} on the ESP (FAT ignores case)"
            )
        if top == TEMPLATES:
            _check_template(label, path, item)
            templates.add(rest)
    declared = {t.path for t in manifest.templates}
    for missing in sorted(declared - templates):
        raise ExtensionError(
            f"{label}: templates.{missing} is declared but templates/{missing} is missing"
        )
    for undeclared in sorted(templates - declared):
        raise ExtensionError(f"{label}: templates/{undeclared} is not declared in {MANIFEST_NAME}")
    raw = manifest.raw_write
    if raw is not None and raw.file not in raw_files:
        raise ExtensionError(f"{label}: rawWrite.file raw/{raw.file} is missing")
    for extra in sorted(set(raw_files) - ({raw.file} if raw else set())):
        raise ExtensionError(f"{label}: unexpected file raw/{extra}: not the rawWrite file")
    if raw is not None:
        try:
            check_raw_layout(raw.offset, raw_files[raw.file], manifest.partition_offset)
        except ExtensionError as exc:
            raise ExtensionError(f"{label}: {exc}") from None
    return manifest


@dataclass(frozen=True)
class PackedOverlay:
    manifest: OverlayManifest
    tar: CanonicalTar


def pack_overlay(
    source: Path,
    dest: Path,
    *,
    epoch: int,
    arch: str = "amd64",
    label: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> PackedOverlay:
    """Validate the overlay `source` and write its canonical tar to `dest`.

    Accepts the same containers as extensions; OCI layouts are read for `linux/<arch>`.
    """
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as spool:
        tree = stage_source(source, Path(spool), arch, label, limits).tree
        manifest = validate_overlay_tree(tree)
        try:
            tar = write_canonical_tar(tree, dest, epoch)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    return PackedOverlay(manifest, tar)


def check_options(manifest: OverlayManifest, options: Mapping[str, object]) -> dict[str, str]:
    """`overlay.options` restricted to what the overlay declares, as strings."""
    known = set(manifest.option_names)
    checked: dict[str, str] = {}
    for key, value in sorted(options.items()):
        if key not in known:
            listing = ", ".join(sorted(known)) or "none"
            raise ExtensionError(
                f'overlay {manifest.name}: unknown option "{key}" (known: {listing})'
            )
        if not isinstance(value, str) or len(value.encode()) > MAX_OPTION_BYTES:
            raise ExtensionError(
                f'overlay {manifest.name}: option "{key}" must be a string of at most '
                f"{MAX_OPTION_BYTES} bytes"
            )
        checked[key] = value
    return checked


def render_template(spec: TemplateSpec, default: str, options: Mapping[str, str]) -> str:
    """The template's text, replaced and/or appended to by the named options."""
    text = options.get(spec.replace_option, default) if spec.replace_option else default
    if spec.append_option and spec.append_option in options:
        text = text.rstrip("\n") + "\n" + options[spec.append_option]
    return text if text.endswith("\n") or not text else text + "\n"


@dataclass(frozen=True)
class PreparedOverlay:
    """An overlay ready for assembly: `esp_dir` is copied onto the ESP root as is."""

    manifest: OverlayManifest
    esp_dir: Path
    raw_file: Path | None  # write at manifest.raw_write.offset
    raw_offset: int
    partition_offset: int
    kernel_args: tuple[str, ...]


def prepare_overlay(
    tar: Path, options: Mapping[str, object], dest: Path, limits: Limits = DEFAULT_LIMITS
) -> PreparedOverlay:
    """Validate the overlay tar, render its templates with `options` into the new `dest`."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".stage-") as spool:
        tree = stage_archive(tar, tar.name, Path(spool), limits)
        manifest = validate_overlay_tree(tree)
        values = check_options(manifest, options)
        esp = dest / ESP
        dest.mkdir(parents=True, exist_ok=False)
        esp.mkdir()
        specs = {t.path: t for t in manifest.templates}
        raw_file: Path | None = None
        for path, item in sorted(tree.entries.items()):
            top, _, rest = path.partition("/")
            if item.kind != "file" or top not in (ESP, TEMPLATES, RAW):
                continue
            if top == RAW:
                raw_file = dest / "raw.bin"
                target = raw_file
            else:
                target = esp / rest
                target.parent.mkdir(parents=True, exist_ok=True)
            if top == TEMPLATES:
                text = render_template(specs[rest], item.read_bytes().decode("utf-8"), values)
                target.write_text(text, encoding="utf-8")
            else:
                with item.open() as src, target.open("xb") as out:
                    shutil.copyfileobj(src, out, 1024 * 1024)
    return PreparedOverlay(
        manifest=manifest,
        esp_dir=esp,
        raw_file=raw_file,
        raw_offset=manifest.raw_write.offset if manifest.raw_write else 0,
        partition_offset=manifest.partition_offset,
        kernel_args=manifest.kernel_args,
    )
