"""An extension's compressed firmware member of the initramfs, built once and cached.

`layers/firmware/<k>` beside the extension's layer (`layers/extension/<k>`), keyed by the
extension's digest, the epoch its entries are dated at and `FIRMWARE_RECIPE`: every schematic
with that extension reuses the member instead of compressing the firmware again. The layer
stage writes it from the extension's tree (`workers.assembly.tree_firmware`).
"""

from __future__ import annotations

from pathlib import Path

from workers.pipeline.layer_cache import cache_key, load_entry, save_entry
from workers.store import Store

# Bump when the bytes of a firmware member would change for the same extension.
FIRMWARE_RECIPE = 3
MEMBER = "firmware.cpio.zst"


def firmware_key(digest: str, epoch: int) -> str:
    return cache_key("firmware", {"digest": digest, "epoch": epoch, "recipe": FIRMWARE_RECIPE})


def load_firmware_member(store: Store, digest: str, workdir: Path, *, epoch: int) -> Path | None:
    """The cached firmware member of the extension `digest`, or None."""
    entry = load_entry(store, firmware_key(digest, epoch), workdir / "cached")
    return None if entry is None else entry.files[MEMBER]


def save_firmware_member(store: Store, digest: str, member: Path, *, epoch: int) -> None:
    """Cache `member`, never written again: a local store keeps this very file (hard link)."""
    save_entry(store, firmware_key(digest, epoch), {MEMBER: member}, {}, adopt=True)
