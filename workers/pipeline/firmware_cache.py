"""An extension's compressed firmware member of the initramfs, built once and cached.

`layers/firmware/<k>` beside the extension's layer (`layers/extension/<k>`), keyed by the
extension's digest, the epoch its entries are dated at and `FIRMWARE_RECIPE`: every schematic
with that extension reuses the member instead of compressing the firmware again.
"""

from __future__ import annotations

from pathlib import Path

from workers.assembly.initramfs_members import make_firmware_member
from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.store import Store

# Bump when the bytes of a firmware member would change for the same extension.
FIRMWARE_RECIPE = 1
MEMBER = "firmware.cpio.zst"


def firmware_key(digest: str, epoch: int) -> str:
    return cache_key("firmware", {"digest": digest, "epoch": epoch, "recipe": FIRMWARE_RECIPE})


def cached_firmware_member(
    store: Store, digest: str, extras: Path, workdir: Path, *, epoch: int
) -> Path:
    """The firmware member of the extension `digest` whose extras directory is `extras`:
    from the cache, or built from `extras` (its firmware is moved out) and cached."""
    prefix = firmware_key(digest, epoch)
    entry = load_entry(store, prefix, workdir / "cached")
    if entry is not None:
        return entry.files[MEMBER]
    member = make_firmware_member(extras, workdir / "build", epoch=epoch)
    save_entry(store, prefix, {MEMBER: member}, {})
    return member
