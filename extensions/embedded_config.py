"""The virtual `embedded-config` extension: a schematic's `embeddedMachineConfiguration` as a
layer, as Talos' imager (≥ 1.12, `pkg/imager/embed.go`) makes it for Image Factory.

Its manifest names it `embedded-config`, version = sha256 hex of the configuration, author
`Imager`; its rootfs holds the document as `/usr/local/etc/talos/config.yaml`. Talos writes
it mode 0400 with an SELinux label (`system_state_t`); here it is a canonical extension tar
like every other layer, whose modes are normalised (0644) and which carries no xattrs, so the
file is readable by every user of the booted system (the reference OS has one, root).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from extensions.budget import Budget
from extensions.canonical import write_canonical_tar
from extensions.limits import DEFAULT_LIMITS
from extensions.manifest import Manifest, render_manifest
from extensions.tree import Entry, Tree

EMBEDDED_CONFIG_EXTENSION = "embedded-config"
CONFIG_PATH = "usr/local/etc/talos/config.yaml"
AUTHOR = "Imager"
DESCRIPTION = "Virtual extension which embeds the machine configuration."


def embedded_config_version(config: bytes) -> str:
    return hashlib.sha256(config).hexdigest()


def make_embedded_config_extension(config: bytes, epoch: int) -> bytes:
    """The canonical tar of the `embedded-config` extension holding `config`."""
    manifest = Manifest(
        name=EMBEDDED_CONFIG_EXTENSION,
        version=embedded_config_version(config),
        author=AUTHOR,
        description=DESCRIPTION,
        compatibility=">= 1.0.0",
    )
    with tempfile.TemporaryDirectory(prefix="embedded-config-") as tmp:
        spool = Path(tmp)
        tree = Tree(spool / "spool", EMBEDDED_CONFIG_EXTENSION, Budget(DEFAULT_LIMITS, "config"))
        manifest_blob = spool / "manifest"
        manifest_blob.write_bytes(render_manifest(manifest))
        document = spool / "config"
        document.write_bytes(config)
        tree.entries = {
            "manifest.yaml": Entry("file", 0o644, manifest_blob.stat().st_size, blob=manifest_blob),
            f"rootfs/{CONFIG_PATH}": Entry("file", 0o644, len(config), blob=document),
        }
        return write_canonical_tar(tree, spool / "out.tar", epoch).path.read_bytes()
