"""The virtual `schematic` extension Image Factory adds to every image (image-factory-api §3.3).

Its manifest carries the schematic ID as the version and the canonical schematic YAML as
`extraInfo`; its rootfs holds one empty file, `/usr/local/share/schematic/<ID>`, so a node
can report what it was built from.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from extensions.budget import Budget
from extensions.canonical import write_canonical_tar
from extensions.errors import ExtensionError
from extensions.limits import DEFAULT_LIMITS
from extensions.manifest import Manifest, render_manifest
from extensions.tree import Entry, Tree

SCHEMATIC_EXTENSION = "schematic"
DESCRIPTION = (
    "Virtual extension which specifies the schematic of the image built with Image Factory."
)
_SCHEMATIC_ID = re.compile(r"^[0-9a-f]{64}$")


def schematic_author(external_url: str) -> str:
    """The extension's author; with no configured URL just the name, so the bytes never depend
    on where a request happened to reach the factory."""
    return f"Image Factory ({external_url})" if external_url else "Image Factory"


def make_schematic_extension(
    schematic_id: str, canonical_yaml: bytes, author: str, epoch: int
) -> bytes:
    """The canonical tar of the `schematic` extension for `schematic_id`."""
    if not _SCHEMATIC_ID.match(schematic_id):
        raise ExtensionError(f'invalid schematic ID "{schematic_id}"')
    manifest = Manifest(
        name=SCHEMATIC_EXTENSION,
        version=schematic_id,
        author=author,
        description=DESCRIPTION,
        compatibility=">= 1.0.0",
        extra_info=canonical_yaml.decode("utf-8"),
    )
    with tempfile.TemporaryDirectory(prefix="schematic-ext-") as tmp:
        spool = Path(tmp)
        tree = Tree(spool / "spool", SCHEMATIC_EXTENSION, Budget(DEFAULT_LIMITS, "schematic"))
        manifest_blob = spool / "manifest"
        manifest_blob.write_bytes(render_manifest(manifest))
        empty = spool / "empty"
        empty.write_bytes(b"")
        tree.entries = {
            "manifest.yaml": Entry("file", 0o644, manifest_blob.stat().st_size, blob=manifest_blob),
            f"rootfs/usr/local/share/schematic/{schematic_id}": Entry("file", 0o644, 0, blob=empty),
        }
        return write_canonical_tar(tree, spool / "out.tar", epoch).path.read_bytes()
