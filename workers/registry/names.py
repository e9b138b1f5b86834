"""What a registry path names: a repository `<image>/<schematic-id>`, a tag or a digest.

Every path segment is checked against the OCI grammar before anything touches the store:
- image and schematic ID are repository path components (`[a-z0-9]+([._-]…)`, so `..`,
  `%2F`, upper case and empty segments are `NAME_INVALID`), at most `MAX_COMPONENT` long;
- a well-formed image name that is not one of `installer[-secureboot]` and
  `<platform>-installer[-secureboot]` (known platforms only), or a schematic ID that is not
  64 lowercase hex, is `NAME_UNKNOWN` (404): upstream answers 400 `invalid image`, but the
  distribution spec's 404 makes skopeo, crane and docker say "repository name not known",
  which is what happened;
- tags follow `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (`TAG_INVALID`), digests must be
  `sha256:<64 lowercase hex>` (`DIGEST_INVALID`: the only algorithm this registry stores).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from workers.planning.profiles import PLATFORMS, SECUREBOOT_SUFFIX
from workers.registry.errors import DigestInvalid, NameInvalid, NameUnknown, TagInvalid

MAX_COMPONENT = 128
INSTALLER = "installer"
DEFAULT_PLATFORM = "metal"
REGISTRY_PREFIX = "registry/"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_SCHEMATIC_ID = re.compile(r"[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_SIGNATURE_TAG = re.compile(r"sha256-([0-9a-f]{64})\.sig")


@dataclass(frozen=True)
class Repository:
    """One installer repository: `<image>/<schematic_id>`."""

    image: str
    schematic_id: str
    platform: str
    secureboot: bool

    @property
    def name(self) -> str:
        return f"{self.image}/{self.schematic_id}"

    @property
    def store_prefix(self) -> str:
        """Where this repository's records live in the store."""
        return f"{REGISTRY_PREFIX}{self.image}/{self.schematic_id}/"

    def asset_path(self, arch: str) -> str:
        """The installer asset (`/image/...` path) that becomes this repository's `arch` image."""
        sb = SECUREBOOT_SUFFIX if self.secureboot else ""
        if self.image.startswith(INSTALLER):
            return f"{INSTALLER}-{arch}{sb}.tar"
        return f"{self.platform}-{INSTALLER}-{arch}{sb}.tar"


def parse_repository(image: str, schematic_id: str) -> Repository:
    """The repository `image/schematic_id`; raise NAME_INVALID or NAME_UNKNOWN."""
    for component in (image, schematic_id):
        if len(component) > MAX_COMPONENT or not _COMPONENT.fullmatch(component):
            raise NameInvalid(
                f"invalid repository name component {_shown(component)}",
                {"name": f"{image[:MAX_COMPONENT]}/{schematic_id[:MAX_COMPONENT]}"},
            )
    base, secureboot = image, False
    if base.endswith(SECUREBOOT_SUFFIX):
        base, secureboot = base.removesuffix(SECUREBOOT_SUFFIX), True
    if base == INSTALLER:
        platform = DEFAULT_PLATFORM
    elif base.endswith("-" + INSTALLER) and base.removesuffix("-" + INSTALLER) in PLATFORMS:
        platform = base.removesuffix("-" + INSTALLER)
    else:
        raise NameUnknown(
            f"invalid image: {_shown(image)}: expected installer[-secureboot] or "
            "<platform>-installer[-secureboot]",
            {"name": f"{image}/{schematic_id}"},
        )
    if not _SCHEMATIC_ID.fullmatch(schematic_id):
        raise NameUnknown(
            f'schematic ID "{schematic_id}" not found', {"name": f"{image}/{schematic_id}"}
        )
    return Repository(image, schematic_id, platform, secureboot)


def is_digest_reference(reference: str) -> bool:
    """Manifest references holding a `:` are digests (tags cannot contain one)."""
    return ":" in reference


def parse_digest(text: str) -> str:
    """`sha256:<hex>` → `<hex>`; anything else is DIGEST_INVALID."""
    match = _DIGEST.fullmatch(text)
    if not match:
        raise DigestInvalid(
            f"invalid digest {_shown(text)}: expected sha256:<64 lowercase hex digits>",
            {"digest": text[:MAX_COMPONENT]},
        )
    return match.group(1)


def check_tag(text: str) -> str:
    if not _TAG.fullmatch(text):
        raise TagInvalid(f"invalid tag {_shown(text)}", {"tag": text[:MAX_COMPONENT]})
    return text


def signature_tag(digest_hex: str) -> str:
    """cosign's tag for the signature of the manifest `sha256:<digest_hex>`."""
    return f"sha256-{digest_hex}.sig"


def is_signature_tag(tag: str) -> bool:
    return _SIGNATURE_TAG.fullmatch(tag) is not None


def _shown(text: str) -> str:
    """Client input for messages: quoted, printable ASCII, bounded."""
    cut = text if len(text) <= MAX_COMPONENT else text[:MAX_COMPONENT] + "..."
    return json.dumps(cut)
