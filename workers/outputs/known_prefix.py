"""The first bytes of an asset, known before it is built: what a cold download can send
while its build runs (`factory.cold_stream`). Read from the store only (release manifest,
extension records): nothing is extracted, no tool runs, no pipeline module is loaded.

- `kernel-<arch>`: the release's kernel, as is (`pipeline/build_asset`): the whole asset.
- `initramfs-<arch>.xz`: [early microcode cpio] ‖ the release's base initramfs, as is ‖ the
  extension segment (`assembly/initramfs.concat_initramfs`). Without microcode it starts
  with the base, byte for byte. Whether an extension brings microcode was recorded when it
  entered the catalog (`ExtensionRecord.cpu_microcode`); a record from before that (None),
  or a missing one, counts as bringing some: nothing is known then. The layers the factory
  makes itself (`SOURCE_BLOB`: the schematic's ID file, the embedded machine config) carry
  no firmware.

A wrong answer here could never reach a client complete: the streamed body is checked
against the published build before its last bytes go out.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.catalog.records import EXTENSIONS_PREFIX, ExtensionRecord, record_from_json
from workers.planning.plans import SOURCE_BLOB, Plan
from workers.planning.profiles import Kind
from workers.releases.manifest import INITRAMFS, VMLINUZ
from workers.releases.stored import blob_key, load_release
from workers.store import ObjectNotFound, Store


@dataclass(frozen=True)
class KnownPrefix:
    blob: str  # store key of the bytes
    size: int
    whole: bool  # the asset is exactly these bytes (else more follow)


def known_prefix(store: Store, plan: Plan) -> KnownPrefix | None:
    """The bytes `plan`'s asset starts with before it is built, or None when none are known."""
    if plan.kind is Kind.KERNEL:
        name, whole = VMLINUZ, True
    elif plan.kind is Kind.INITRAMFS and not may_bring_microcode(store, plan):
        name, whole = INITRAMFS, False
    else:
        return None
    release = load_release(store, plan.version, plan.arch)
    if release.digest != plan.release_digest:
        return None  # re-imported since the plan was made: the build will refuse it
    entry = release.files.get(name)
    if entry is None:
        return None
    return KnownPrefix(blob_key(entry.sha256), entry.size, whole)


def may_bring_microcode(store: Store, plan: Plan) -> bool:
    """Whether any of the plan's extensions brings (or might bring) early CPU microcode."""
    for ext in plan.extensions:
        if ext.source == SOURCE_BLOB:
            continue
        try:
            data = store.get_bytes(f"{EXTENSIONS_PREFIX}{ext.digest}.json")
        except ObjectNotFound:
            return True
        if record_from_json(ExtensionRecord, data).cpu_microcode is not False:
            return True
    return False
